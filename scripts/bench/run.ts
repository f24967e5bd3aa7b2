// `npm run bench`: runs every benchmark with its baseline in the same process and run, then prints
// the machine and ONE table (nearmesh | baseline | ratio | goal | pass). Exit 1 only if a benchmark crashed.
// Row numbers as arguments run only the sections holding them: `node dist/scripts/bench/run.js 11 13`.
// Scale rows (many agent processes, minutes each) run only when asked: by their numbers, or all with `scale`.
import { cpus } from 'node:os';
import { BLE_MESSAGE_BYTES, BLE_MTU, BLE_RUNS, BLE_TOTAL_BYTES, BLE_WARMUPS, bleRows } from './ble-bench.js';
import { roundTripRows, sizeRows } from './codec-bench.js';
import {
  CALL_CHAIN_LENGTH,
  CALL_SAMPLES,
  CALL_WARMUPS,
  callGroupRows,
  callRoundTripRows,
  FANOUT_MEMBERS,
  FANOUT_SAMPLES,
  FANOUT_WARMUPS,
  SPREAD_IN_MS,
  SPREAD_MEMBERS,
  SPREAD_REPETITIONS,
  SPREAD_SMALL_MEMBERS,
} from './coordination-bench.js';
import { loadSince, readLoad } from './cpu-usage.js';
import {
  CACHE_DUPLICATE_SHARE,
  CACHE_RATE_PER_S,
  CACHE_SAMPLE_EVERY_S,
  CACHE_SECONDS,
  CACHE_SOURCES,
  CACHE_STEADY_FROM_S,
  duplicateCacheRows,
} from './duplicate-cache-bench.js';
import { floodRows } from './flood-bench.js';
import { goodputRows } from './goodput-bench.js';
import { HANDSHAKES, handshakeRow, WARMUP_HANDSHAKES } from './handshake-bench.js';
import {
  AFTER_STORM_MS,
  BASELINE_SENDS,
  HUB_PEERS,
  HUB_SENSOR,
  WARMUP_MS as HUB_WARMUP_MS,
  WINDOW_MS as HUB_WINDOW_MS,
  hubScaleRows,
  READS_PER_S,
  SENDS_PER_S,
} from './hub-scale-bench.js';
import { idleCostRows } from './idle-cost-bench.js';
import { INBOX_MESSAGES, inboxRows } from './inbox-bench.js';
import { IDLE_WINDOW_MS, LAB_AGENTS, LAB_MEAN_DEGREE, labScaleRows } from './lab-scale-bench.js';
import { meshFloodRows } from './mesh-flood-bench.js';
import { HOP_CHAIN_LENGTH, HOP_SAMPLES, HOP_WARMUPS, meshHopRows } from './mesh-hop-bench.js';
import { LARGE_MESH, largeMeshRows, meshScaleRows } from './mesh-scale-bench.js';
import {
  MQTT_QOS1_MESSAGES,
  MQTT_QOS1_PAYLOAD_BYTES,
  MQTT_QOS1_RUNS,
  MQTT_QOS1_WARMUPS,
  MQTT_QOS1_WINDOW,
  mqttQos1Rows,
} from './mqtt-qos1-bench.js';
import {
  LOOPBACK_FILE_MIB,
  LOOPBACK_RUNS,
  LOOPBACK_WARMUPS,
  loopbackPushRows,
  SHAPED_FILE_MIB,
  SHAPED_RUNS,
  shapedPushRows,
  TBF,
} from './push-bench.js';
import {
  RELIABLE_MESSAGE_BYTES,
  RELIABLE_MESSAGES,
  RELIABLE_RUNS,
  RELIABLE_WARMUPS,
  RELIABLE_WINDOW,
  reliableRows,
} from './reliable-bench.js';
import {
  LINES_PER_REQUEST,
  ROUTED_CHAIN_LENGTH,
  ROUTED_MESSAGES,
  ROUTED_RUNS,
  ROUTED_WARMUPS,
  routedReliableRows,
} from './routed-reliable-bench.js';
import { idleRssRows } from './rss-bench.js';
import { errorRow, formatTable, MAX_OTHER_LOAD, type ResultRow, withLoad } from './table.js';
import { elapsedMs } from './timing.js';
import { originAuthRateRows, PAYLOAD_BYTES, routedBytesRows } from './trust-bench.js';
import { TCP_SAMPLES, UPGRADE_RUNS, upgradeRows } from './upgrade-bench.js';
import { V1_COMMIT } from './v1-baseline.js';

interface Section {
  readonly name: string;
  readonly run: () => Promise<readonly ResultRow[]>;
  /** Counts bytes, frames or heap on a simulated clock: other work on the machine cannot change its figures. */
  readonly countsOnly?: true;
  /** Many agent processes for minutes: left out of the default run, run by its number or `scale`. */
  readonly scale?: true;
}

const SECTIONS: readonly Section[] = [
  { name: '1  envelope bytes vs JSON', run: async () => sizeRows(), countsOnly: true },
  { name: '2  encode+decode msg/s vs JSON', run: roundTripRows },
  { name: '3  TCP goodput vs raw socket', run: goodputRows },
  { name: '4  handshake vs TCP connect', run: async () => [await handshakeRow()] },
  { name: '5  idle RSS vs bare node', run: idleRssRows },
  { name: '6-7  BLE goodput, scan→link (emulator)', run: bleRows },
  { name: '8  mesh latency per relay hop (lab chain), v2 vs v1', run: meshHopRows },
  { name: '9  mesh transmissions per broadcast vs naive flood', run: meshFloodRows, countsOnly: true },
  { name: '10 duplicate-cache heap at 1,000 msg/s', run: duplicateCacheRows, countsOnly: true },
  { name: '11 call round trip, 1 and 3 hops (chain of 4)', run: callRoundTripRows },
  { name: '12-13 call a group of 10, --in spread on 5 and 2', run: callGroupRows },
  { name: '14 BLE→TCP upgrade and fallback (namespaces, emulator)', run: upgradeRows },
  { name: '15 push goodput, 40 Mbit/s tbf veth', run: shapedPushRows },
  { name: '16 push on loopback vs scp and raw TCP', run: loopbackPushRows },
  { name: '17 reliable send --lines msg/s', run: reliableRows },
  { name: '18 routed unicast bytes, v2 vs v1', run: routedBytesRows, countsOnly: true },
  { name: '19 routed reliable msg/s through a relay, v2 vs v1', run: routedReliableRows },
  { name: '20 origin auth: signatures and tags per second', run: originAuthRateRows },
  { name: '21 MQTT flood: event-loop delay and RSS vs idle', run: floodRows },
  { name: '22 app inbox msg/s in, and out through listen', run: inboxRows },
  { name: '23 idle CPU: alone, and per linked idle peer', run: idleCostRows },
  { name: '24 the mesh at 50, 100 and 200 agents (in memory)', run: meshScaleRows, countsOnly: true },
  { name: '25 MQTT QoS 1 publishes into the mesh vs mosquitto', run: mqttQos1Rows },
  { name: `26 a hub with ${HUB_PEERS} direct peers`, run: hubScaleRows, scale: true },
  { name: `27 a lab of ${LAB_AGENTS} agents dropped at random`, run: labScaleRows, scale: true },
  { name: `28 the mesh at ${LARGE_MESH} agents (in memory)`, run: largeMeshRows, scale: true },
];

const FOOTNOTES = [
  'ratio = nearmesh / baseline; MB = 10^6 bytes; every baseline is measured in this run, on this machine.',
  "busy (other) = the share of all cores' time that was busy during the row's runs (/proc/stat), and in",
  '   brackets the part of it not spent by this bench and its child processes (/proc/<pid>/stat of the',
  `   whole tree): other work on a shared machine. Over ${MAX_OTHER_LOAD * 100} % other, a row reads BUSY, not PASS/FAIL.`,
  '   Rows of counts (bytes, frames, heap on a simulated clock: 1, 9, 10, 18, 24) have no busy figure.',
  `v1 = protocol version 1 as of commit ${V1_COMMIT} (the last before v2), exported with git archive, built with this`,
  "   repository's tsc and node_modules, cached under the OS temp dir (scripts/bench/v1-baseline.ts); its rows",
  '   (8c, 18-20) fail if it cannot be built. v1 agents only ever talk to v1 agents: the handshakes differ.',
  '1  encodeMessage() bytes vs UTF-8 JSON.stringify({v,type,ack,id,payload[,ttl,src,dst,auth]}): id 1234,',
  '   ack, payload the 10-byte text {"t":21.5} (a JSON string), ttl 5, src/dst as 16-hex peer ids, the',
  "   routed form's 16-byte origin tag (§2.1) as 32 hex characters.",
  '2  the DATA of 1a; tinybench, 64 round trips per sample, median of 3 rounds in alternating order.',
  '   nearmesh: encodeMessage+decodeMessage (full validation, payload copied); JSON: stringify+parse, no',
  '   validation. 2a: payload as the text itself (JSON best case); 2b: base64, converted both ways.',
  '3  256 MiB of 64 KiB messages per run, back-pressure respected; receiver in a worker thread (own core);',
  '   rate = first to last arrival at the receiver; 1 warm-up + median of 3 runs, the kinds interleaved.',
  '   nearmesh: TcpTransport + XXpsk0 SecureLink (ChaCha20-Poly1305), one encodeMessage per message;',
  '   the receiver decrypts and decodeMessage()s each one and counts payload bytes. Sealed (3b, 3c): the',
  "   floor of any authenticated stream with that cipher in Node: each message sealed by node:crypto's",
  '   ChaCha20-Poly1305 (a fresh cipher per message, counter nonce), written [u32 length][ciphertext][tag],',
  '   reassembled and opened by the receiver (scripts/bench/sealed-stream.ts); no protocol, no handshake.',
  "   3b's goal (≥ 90 % of it) is what nearmesh's framing, codec and Noise state may cost over that floor.",
  `4  ${HANDSHAKES} samples after ${WARMUP_HANDSHAKES} warm-ups, median (p95), timed at the initiator from dial() to`,
  '   establishSecureLink() resolving; both ends in this process. Baseline: net.connect() to "connect".',
  '5  VmRSS of `nearmesh agent` on 127.0.0.1:0, discovery and BLE off, vs an idle `node -e`, 15 s after the',
  '   agent answered (V8 compacts the heap ~8 s after start-up). 5a: MQTT off; 5b: the MQTT endpoint on',
  "   127.0.0.1:0 (as the defaults serve it); 5c: 5a's agent 3 s after it answered, start-up garbage included.",
  '   Every agent of 5 runs as scripts/systemd/nearmesh.service starts it (its Environment= and node flags).',
  '   5d-5e: two agents on 127.0.0.1 (static peer, 15 s settled), tx pushes 7 files of 10 MB to rx one after',
  "   the other, then both are left alone 15 s: each one's VmRSS vs its own idle reading before the pushes.",
  `6  BLE emulator (scripts/ble-emulator: btvirt -s, controllers on ptys), ATT MTU ${BLE_MTU} on both sides,`,
  `   ${BLE_TOTAL_BYTES / 1024} KiB per run, ${BLE_WARMUPS} warm-up + median of ${BLE_RUNS} runs, raw/nearmesh interleaved; every noble/bleno`,
  '   role in its own child process. nearmesh: a central-only BleTransport dials a peripheral-only one,',
  `   establishSecureLink() (XXpsk0) over the GattLink FrameLink, then ${BLE_MESSAGE_BYTES}-byte messages through the`,
  '   SecureLink (ChaCha20-Poly1305, fragment headers, flow control), back-pressure respected. Raw: noble',
  '   writeWithoutResponse of MTU−3-byte values to a bleno characteristic. Both measured at the receiver:',
  '   payload bytes after the first arrival / first→last arrival; kB = 10^3 bytes.',
  '7  the same runs, at the dialer, adapters already powered on: nearmesh from BleResolver.start() (scan',
  '   start) to establishSecureLink() resolving (discover, connect, MTU, GATT discovery, subscribe, 4 Noise',
  '   frames); raw: noble startScanning → discover → connect → MTU → discover characteristics → subscribe.',
  '6-7 on a real Pi radio: the emulator has no RF loss or retransmission, one ACL buffer of 192 bytes, no',
  '   DLE and no 2M PHY, and it reports an advertiser as soon as scanning starts; a real radio is usually',
  '   slower and lossier, and its scan→link time is dominated by advertising and connection intervals',
  '   (often several hundred ms). So the absolute kB/s and ms say little about a Pi; the ratios say how',
  '   much nearmesh adds over the bare libraries on the same link (fragment headers, flow control, Noise',
  '   and JS cost), which is the part that carries over. Both rows read "skipped" without the emulator.',
  `8  ${HOP_CHAIN_LENGTH} real agents in a network-namespace chain (scripts/lab, unshaped veths, static peers: each`,
  '   agent links only to its neighbours). Round trip of a reliable unicast from n1 (control-socket `send`,',
  `   resolved by the end-to-end ACK), ${HOP_SAMPLES} samples per target after ${HOP_WARMUPS} warm-ups, targets interleaved; medians.`,
  '   8: to n5 (4 hops) vs to n2 (1 hop, the direct link with its link-level ACK): per relay hop',
  '   (rtt4 − rtt1) / (2·3), so it also carries what routing costs at the two ends. 8b: routed both ways,',
  '   n5 vs n3 (2 hops): (rtt4 − rtt2) / (2·2), relays only. Ratio: rtt4 / rtt1 (8), rtt4 / rtt2 (8b).',
  '   8c: a second lab chain of v1 agents, its round trips interleaved with those of 8 (v2, v1, v2, ...);',
  "   8b's figure (what a relay adds) v2 − v1, with its 95 % percentile-bootstrap interval (each series",
  '   resampled, 2,000 times): PASS unless the whole interval is above 0 (v2 slower by more than the noise),',
  '   and v2 at most 1.25× v1 (a noisy run widens the interval; it must not widen the goal).',
  "   8d: the 2-hop round trip, v2 − v1 (info): the ends' fixed cost of origin authentication (seal and",
  '   check of each DATA and ACK), which row 8 spreads over the hops (its 1-hop send is link-local).',
  '   The rows read "skipped" without root and network namespaces (and tc, nft for the lab).',
  '9  in-memory mesh (scripts/bench/mesh-sim.ts: real Routers, real encoded frames, FIFO links), after two',
  '   rounds of announcements; every agent broadcasts once, frames counted and averaged; every broadcast',
  '   must reach every agent. Naive: each agent forwards the first copy on all links but the one it came',
  '   on. Same graph, same hop budget (the default ttl 4, raised to the diameter on 4×4 and 5×5).',
  '10 one DuplicateCache (defaults: 2 s window, capacity 16,384) in a child run with --expose-gc, on a',
  `   simulated clock: ${CACHE_RATE_PER_S.toLocaleString('en-US')} distinct (source, id)/s from ${CACHE_SOURCES} sources for ${CACHE_SECONDS} s, each followed by`,
  `   ${CACHE_DUPLICATE_SHARE} re-arrivals on average (copies within 100 ms); heapUsed after gc minus the empty heap, every`,
  `   ${CACHE_SAMPLE_EVERY_S} s. 10a: the median reading from ${CACHE_STEADY_FROM_S} s on vs a cache filled past its capacity by a burst`,
  '   (the most it can ever hold). 10b: median of the later half of those readings vs the earlier half.',
  "11-13 real agents on 127.0.0.1 (static peers, discovery off), driven through the caller's control socket",
  '   (ControlClient, no CLI start-up). Every action is `exec` of one sh script that echoes {"ok":true} (sh',
  '   builtins only: one fork+exec per call). A call is two reliable messages (signed CALL, RESULT), a send one.',
  `11 a chain of ${CALL_CHAIN_LENGTH} (each agent dials the one before), from c1; ${CALL_SAMPLES} samples per series after ${CALL_WARMUPS} warm-ups,`,
  '   call/send to c2 and c4 and a bare exec interleaved; median (p95). 11a/11b: call rtt (request until the',
  '   result) vs send rtt (until the end-to-end ACK) to the same agent, 1 hop (c2) and 3 hops (c4). 11c: what',
  '   a call adds over a send at 1 hop (call − send, medians) vs the same script run from the bench process',
  "   by the agent's own runProcess (spawn, args on stdin, stdout read); ratio (call − send) / exec.",
  `12 a star: the caller "hub" (in no group) and ${FANOUT_MEMBERS} members dialing it, one hop each. \`call group:ten\` until`,
  `   all ${FANOUT_MEMBERS} results vs a call to one member; ${FANOUT_SAMPLES} samples each after ${FANOUT_WARMUPS} warm-ups, interleaved; median (p95);`,
  `   +/member = (group − one) / ${FANOUT_MEMBERS - 1}.`,
  `13 the same star: \`call group:five\` (${SPREAD_MEMBERS} members) with in_ms ${SPREAD_IN_MS}, 1 warm-up (clock-offset exchanges) +`,
  `   ${SPREAD_REPETITIONS} repetitions; spread = max − min of the fired_at_ms rows (executor instants in the caller's clock,`,
  '   before the fork); median (max) over the repetitions. The executor sleeps, readies the run (stdin,',
  '   environment), blocks the thread (Atomics.wait) and spins the last 0.5 ms, then forks; all agents share',
  '   one clock here, so the spread is firing',
  '   lateness, not clock skew. A member converts its instant and its fired_at with the same offset estimate,',
  '   so an error in that estimate moves when it really fires but not its fired_at: it is not in the spread',
  "   (stderr shows each fired_at − the instant the bench asked for, which includes the request's way to the",
  '   hub, and the per-member error is not visible here). Baseline (13c): 5 bare node processes started with the',
  `   members, each told the same instant ${SPREAD_IN_MS} ms ahead, waiting for it with the executor's own wait`,
  '   (agent/coordination/wait-until.ts), reading the same clock (timeOrigin + performance.now()) and then,',
  "   as the executor does, running the action's script (its runProcess); the time read before that fork",
  '   counts, as fired_at_ms does. Interleaved with the calls: what 5 processes waking at one instant and',
  '   forking there can do on this machine (the first forks delay those still waking when members outnumber',
  "   cores). PASS when 13's median is at most 1.5× 13c's. 13b: the same on",
  `   ${SPREAD_SMALL_MEMBERS} members (interleaved with 13) vs the 13 figures, PASS when its max ≤ 5 ms: with more agents`,
  '   waking at once than cores, they take turns on a core and some fire late; on a Pi each agent has its own',
  '   cores. 13c vs the same bare processes firing (and forking) on a plain setTimeout: the spread the',
  "   waiting itself costs. 13d: 13 against the same bare processes doing the executor's wait alone, no",
  '   fork (the baseline 13 was first judged against; kept to show what the fork at the instant costs).',
  '14 two agents in two namespaces (scripts/lab, one unshaped veth), each on 2 emulated BLE controllers (the',
  '   emulator of 6-7), no discovery, no static peers: they link over BLE, learn the Wi-Fi endpoint from the',
  `   ENDPOINTS sent over it, dial it and move their traffic to TCP. ${UPGRADE_RUNS} runs, fresh agents each; log times.`,
  '   14a: an agent logs nothing when it hears ENDPOINTS (it only counts links.endpoints_heard, and polling that',
  "   is no use: the peer's ENDPOINTS often arrive over BLE after the TCP link the peer dialled is up), but it",
  '   sends its own in the same turn as its "peer linked" (medium ble) record. So: from the first of the two',
  '   "peer linked" records to the later of the two "peer traffic moved to wifi" records (both agents on TCP);',
  '   it includes the BLE transit of ENDPOINTS (emulated), the TCP connect, the Noise handshake and the switch.',
  `   Median (max) over the runs. Baseline: bare node in n1 → echo server in n2, ${TCP_SAMPLES} fresh connects + one`,
  '   32-byte round trip each, median. 14b: 1 s after both moved, one end of the veth set down (instant: the',
  '   middle of that `ip` command) → each agent\'s "peer traffic fell back to ble" record; 2 agents × runs.',
  "   Baseline: NOT measured: the Wi-Fi keep-alive's configured silence limit (WIFI_KEEPALIVE.deadAfterMs); a",
  '   bare TCP socket without traffic notices nothing for minutes. Silence counts from the last byte heard',
  '   (pings every 500 ms) and is checked every 500 ms, so by design the fallback lands between limit − 500',
  '   and limit + 500 ms = 2500 ms: the 3 s goal is met with at least 0.5 s to spare.',
  "15-16 two agents (static peer: tx dials rx, BLE off); `nearmesh push rx <file> --json` run against tx's",
  "   control socket, timed from the CLI's spawn to its 'sent' line (the receiver wrote the file to its inbox,",
  '   fsynced, and verified the SHA-256 the sender computed while sending), so it includes CLI start-up and',
  '   OFFER/ACCEPT.',
  '   Raw baseline (15, 16c): a bare node process (scripts/bench/raw-tcp-child.ts) streaming the same file',
  '   (page cache) to a bare sink that counts the bytes, discards them and answers one byte; spawn to the reply.',
  `   Runs interleaved, medians. 15: ${SHAPED_FILE_MIB} MiB, ${SHAPED_RUNS} runs each, n1 → n2 across a veth shaped on both ends`,
  `   with \`tc qdisc add dev <veth> root tbf ${TBF.join(' ')}\`. 16: ${LOOPBACK_FILE_MIB} MiB, ${LOOPBACK_WARMUPS} warm-up + ${LOOPBACK_RUNS} runs each`,
  '   of push, scp and raw (the order rotating), all on 127.0.0.1 (960 KiB chunks, an 8 MiB window, the',
  '   receiver fdatasyncs every 8 MiB; /tmp is on disk). 16 baseline: OpenSSH scp in SFTP mode (`scp -s`,',
  "   Debian 12's default; the legacy `-O` was slower here), `-o Ciphers=chacha20-poly1305@openssh.com`, to an",
  '   sshd the bench starts on 127.0.0.1 (Debian openssh-server, "skipped: no sshd" without it; throwaway',
  '   ed25519 host and user keys, `-F /dev/null`), spawn to exit, the copy written without fsync. 16b:',
  '   CPU-seconds per GiB moved of every process of the run, both ends (the agents and the CLI; scp, its ssh',
  "   and sshd's session), from /proc/<pid>/stat of the bench's process tree over each run: what /proc/stat's",
  '   machine-wide figure would be on a machine doing nothing else, without the other work a shared one does.',
  "   stderr has each run, the push's own rateBps (acked bytes from ACCEPT on) at its last progress event, the",
  '   CPU time of both agents and the CLI (16: of scp with its ssh, and sshd), how busy the machine was, the',
  "   CPU-seconds of each run, and for 16 the floor: `nearmesh id` + the slower of the sender's SHA-256 and",
  "   ChaCha20-Poly1305 seal of every chunk and the receiver's open and SHA-256 of them (they run at once on two",
  '   cores), timed in the bench process: the most any push with this protocol could reach here is raw time /',
  '   that floor (and scp time / that floor against scp).',
  `17 two agents on 127.0.0.1 as 16; \`nearmesh send rx - --lines --json\` with ${RELIABLE_MESSAGES.toLocaleString('en-US')} distinct ${RELIABLE_MESSAGE_BYTES}-byte lines`,
  `   on stdin (queued durably in SQLite in batches of 1,000, delivered with a window of ${RELIABLE_WINDOW}, each recorded by`,
  "   the receiver before it confirms), from the CLI's spawn to its JSON line (the peer confirmed the last one).",
  `   Baseline: NOT a durable path (the only non-durable one, send --unreliable, is one message per process):`,
  `   a bare node process sending ${RELIABLE_MESSAGES.toLocaleString('en-US')} ${RELIABLE_MESSAGE_BYTES}-byte messages over one TCP connection to a bare echo server,`,
  `   ${RELIABLE_WINDOW} in flight, each echo releasing the next, spawn to done. ${RELIABLE_WARMUPS} warm-up + ${RELIABLE_RUNS} runs, interleaved, medians;`,
  '   stderr also has `nearmesh id` (CLI start-up + one request), the floor under every CLI figure.',
  `18 encodeMessage() of a reliable routed unicast DATA, ${PAYLOAD_BYTES}-byte payload, ttl 4, real peer ids and a real`,
  '   origin tag; v1: its encodeMessage of the same message at the ids a v1 router used (random below 2^31: the',
  '   median over 1,001 draws: 5 bytes of CBOR); v2: the first id of a real SequenceCounter, which starts at the',
  '   clock floor (1,024 per ms since 1970: 9 bytes, 4 more than v1, so that ids never go back). 18b: a',
  '   broadcast DATA (no ack), signed: key and signature (98 bytes with their',
  '   head) instead of the tag. The link adds the same to both versions (Noise tag 16, TCP length 4).',
  `19 a chain of ${ROUTED_CHAIN_LENGTH} agents on 127.0.0.1 (r2 dials r1, r3 dials r2; static peers, so r1 reaches r3 only through`,
  `   r2), routes both ways before timing; r1 sends r3 ${ROUTED_MESSAGES.toLocaleString('en-US')} distinct ${RELIABLE_MESSAGE_BYTES}-byte reliable messages with the control`,
  `   requests \`nearmesh send --lines\` makes (${LINES_PER_REQUEST.toLocaleString('en-US')} a request, the last one waiting for the confirmation), from`,
  "   the bench's control client (no CLI start-up in either figure), from the first request to the last answer.",
  '   Each QUEUED and RECEIVED is a routed DATA, each acknowledged end to end by a routed ACK. The same on a',
  `   chain of v1 agents. ${ROUTED_WARMUPS} warm-up + ${ROUTED_RUNS} runs each, v2/v1 alternating (and which goes first), medians;`,
  "   stderr has each run with the three agents' CPU ms and how busy the machine was.",
  '20 tinybench in this process, median of 3 rounds in alternating order. 20a: OriginAuth.seal of a broadcast',
  '   DATA (32-byte payload; Ed25519 over the covered bytes, §2.1) + encodeMessage, vs node:crypto sign() of',
  '   the same covered bytes + the same encodeMessage; 20b: decodeMessage + OriginAuth.verify with the key',
  '   known (as every agent a broadcast reaches, relays included), vs decodeMessage + node:crypto verify()',
  '   with a ready KeyObject (the codec runs for every message, signed or not, v1 too). 20c: a unicast as',
  '   origin and destination handle it: seal (tag: HMAC-SHA256 under the cached pairwise key) + encode +',
  "   decode + verify, vs v1's encode + decode of the same message; + µs is what v2 adds per message.",
  '   Goal of 20a/20b: a signed broadcast costs one signature where it starts and one verification in every',
  '   agent it reaches; what origin auth does around them (covered bytes, key checks) stays within 10 %.',
  '21 a fresh agent per flood, its MQTT endpoint on loopback with defaults, settled 12 s, then: 200 connections',
  '   each holding an unfinished 200 KB PUBLISH (150 KB sent); 20 clients subscribing 1,000 filters each, then all',
  '   leaving together; 3 offline persistent sessions each sent 60 × 100 KB at QoS 1; 10,000 retained messages,',
  '   then 20 clients at once subscribing to 3 filters that match them all; 100 subscribers to # that never read',
  "   while 3,000 × 10 KB are published. 21a: the agent's own",
  '   event-loop delay (status.event_loop, perf_hooks, last 10-20 s) read 2 s after the floods vs read idle;',
  '   21b: peak VmRSS sampled every 50 ms vs idle. Goals: no stall over 50 ms, at most idle + 64 MiB.',
  `22 two agents on 127.0.0.1 as 16; 22a: \`send --lines\` of ${INBOX_MESSAGES.toLocaleString('en-US')} distinct 32-byte lines to rx, nobody`,
  '   listening there (each stored in its inbox before rx confirms it), spawn to the last confirmation. 22b:',
  '   `listen --json` on rx taking them (one control request per message written, before the next) vs',
  '   `listen --peek --json` printing the same without taking (the path before the inbox), spawn to the last',
  '   line, 3 runs, medians.',
  '23 CPU ms per second of a hub agent on loopback (scheduler time over all its threads, /proc/<pid>/task/*/',
  '   schedstat) over 20 s windows: alone 30 s after start, then 15 s after 1 and after 10 idle peers linked;',
  '   baseline: a bare node with one 1 s timer over the same windows. 23c = (10 peers - alone) / 10; each',
  "   row's busy figure is its own window's.",
  '24 real Routers in memory (every signature checked) on seeded random geometric graphs of 50, 100 and 200',
  "   agents, mean degree about 8, hop budget = the graph's diameter; 24a-c: transmissions per broadcast",
  '   (20 sources) vs naive flooding (hop budget capped at 15); 24d-f: an idle hour (a SYNC per link every',
  '   30 s, every agent renewing its announcement once): frames each agent sends per minute, vs what renewing',
  '   every announcement every 30 s costs; 24g-i: after the agent most routes use dies, SYNC periods until',
  "   every live agent's next hops reach every other live agent.",
  `25 one MQTT.js program (MQTT 5, clean session, in its own process) publishes ${MQTT_QOS1_MESSAGES.toLocaleString('en-US')} distinct ${MQTT_QOS1_PAYLOAD_BYTES}-byte`,
  `   payloads at QoS 1, ${MQTT_QOS1_WINDOW} in flight (the next sent as each PUBACK returns); a QoS 1 subscriber in another`,
  '   process counts them. nearmesh: two agents on 127.0.0.1 as 16, each with its MQTT endpoint; the publisher',
  "   sends to nearmesh/send/rx on tx's endpoint, whose PUBACK comes once the message is in tx's durable queue",
  '   (SQLite WAL, one fsynced transaction per publish), not when rx has it; the subscriber reads',
  "   nearmesh/inbox/# on rx's endpoint (each stored in rx's inbox first). Baseline: mosquitto 2 started by",
  '   the bench on 127.0.0.1 (listener, allow_anonymous true, all else default: persistence false, so its',
  "   PUBACK means the message is in memory and handed to the subscriber's queue), one topic for both.",
  `   Both brokers may queue ${MQTT_QOS1_MESSAGES.toLocaleString('en-US')} messages for the subscriber (max_queued_messages, default 1,000, past which`,
  "   each drops the oldest: at mosquitto's rate a subscriber on a busy machine falls that far behind).",
  `   25a: first publish to last PUBACK, at the publisher; 25b: to the last payload at the subscriber (the`,
  `   two processes' wall clocks). ${MQTT_QOS1_WARMUPS} warm-up + ${MQTT_QOS1_RUNS} runs, nearmesh then mosquitto, medians; stderr has each`,
  "   run, the agents' and mosquitto's CPU ms and how busy the machine was.",
  `26 (only with \`scale\` or 26) a hub agent and ${HUB_PEERS} peer agents, each a process with its own identity, on`,
  '   127.0.0.1, each peer dialling the hub (static peers); the hub started as the unit starts an agent (as in 5:',
  '   its Environment= and node flags), the peers as bare `node main.js agent`. The bench holds one control client per peer and',
  `   sends, per peer, ${SENDS_PER_S} reliable messages a second to the hub (\`send\`, answered on the hub's RECEIVED) and`,
  `   ${READS_PER_S} read a second of the hub's built-in ${HUB_SENSOR} sensor, each peer on its own phase; an app on the hub`,
  '   (a `listen`) takes the messages. Baselines first: the hub idle with its peers linked (RSS, CPU) and',
  `   ${BASELINE_SENDS} sends from one peer at the same pace, the others idle (the quiet round trip). Then ${HUB_WARMUP_MS / 1000} s of load`,
  `   and a ${HUB_WINDOW_MS / 1000} s window: the hub's CPU (schedstat), its VmRSS every 0.5 s, the round trips answered in the`,
  '   window (p50, p99), the reads answered. Then, the load going on, the hub is stopped (SIGTERM) and started',
  '   on the same data_dir: 26a from its spawn until it lists every peer connected (baseline: spawn until its',
  `   control socket answers); the load runs ${AFTER_STORM_MS / 1000} s more and stops; every send must be confirmed and`,
  "   every payload stored once in the hub's inbox (26i: not twice under two inbox ids). 26b: links.keepalive_",
  "   timeouts of the new hub and the growth of the peers' own, restart to the end. 26c: the peak of both hub",
  "   processes. 26f judges the issue's absolute goal; on this machine all the agents share 2 cores (stderr",
  "   has their CPU ms/s and the hub's event-loop delay) and every round trip waits for 3 process wake-ups",
  '   there. 26g is the fair form: the floor of that path under the same load (bare node processes, bench ->',
  '   "peer" -> "hub" -> "peer" -> bench over pipes and loopback TCP, 1 line per peer per second, in the same',
  "   window), and what nearmesh adds to the p99 above it. stderr has the reads' round trips, refusals and",
  '   failures of the storm on both sides and when each link came back.',
  `27 (only with \`scale\` or 27) ${LAB_AGENTS} agents in network namespaces (scripts/lab), dropped on a square and linked`,
  `   within radio range (\`geometric\`, seeded, about ${LAB_MEAN_DEGREE} links each), each dialling only its lab neighbours,`,
  "   the hop budget ([mesh] ttl) at the graph's diameter. 27a: from all links up until every agent's next hops",
  '   lead to every other agent; 27b: a reliable send from every agent to the one farthest from it, all at once',
  `   (round trips to the end-to-end ACK); 27c: mesh.transmissions + syncs_sent + announcements_synced over ${IDLE_WINDOW_MS / 1000} s idle, per agent`,
  '   per minute, vs the announcements renewing each every 30 s would make; 27d: VmRSS of the agents, idle.',
  '   Needs root and namespaces ("skipped" otherwise).',
  `28 (only with \`scale\` or 28) row 24 at ${LARGE_MESH} agents, one graph: minutes, every signature checked for real (each`,
  '   agent recomputes the trees of every source it forwards for after each change). Info only.',
];

/** The row numbers a section covers, from its name: "8 …" -> [8], "6-7 …" -> [6, 7]. */
function rowNumbers(section: Section): number[] {
  const match = /^(\d+)(?:-(\d+))?\s/.exec(section.name);
  if (match === null) return [];
  const first = Number(match[1]);
  const last = match[2] === undefined ? first : Number(match[2]);
  return Array.from({ length: last - first + 1 }, (_, index) => first + index);
}

/** Every section but the scale ones, or those holding a row number given (`scale`: every scale section). */
function selectedSections(args: readonly string[]): readonly Section[] {
  if (args.length === 0) return SECTIONS.filter((section) => section.scale !== true);
  const withScale = args.includes('scale');
  const wanted = new Set(args.filter((arg) => arg !== 'scale').map(Number));
  if ([...wanted].some((row) => !Number.isInteger(row)))
    throw new Error(`expected row numbers or "scale" as arguments, got: ${args.join(' ')}`);
  return SECTIONS.filter(
    (section) => (withScale && section.scale === true) || rowNumbers(section).some((row) => wanted.has(row)),
  );
}

function machineLine(): string {
  const cores = cpus();
  const model = cores[0]?.model.trim() || 'unknown cpu';
  return `machine: ${model}, ${cores.length} cores, node ${process.version}, ${process.platform}/${process.arch}`;
}

async function main(): Promise<number> {
  const rows: ResultRow[] = [];
  let crashed = false;
  for (const section of selectedSections(process.argv.slice(2))) {
    const startNs = process.hrtime.bigint();
    process.stderr.write(`bench: ${section.name} ... `);
    const loadBefore = readLoad();
    try {
      const sectionRows = await section.run();
      const load = loadSince(loadBefore);
      rows.push(...sectionRows.map((row) => (section.countsOnly ? row : withLoad(row, load))));
      process.stderr.write(`${(elapsedMs(startNs) / 1000).toFixed(1)} s\n`);
    } catch (error) {
      crashed = true;
      process.stderr.write('CRASHED\n');
      console.error(error);
      rows.push(errorRow(section.name, error));
    }
  }
  console.log(machineLine());
  console.log('');
  console.log(formatTable(rows));
  console.log('');
  for (const line of FOOTNOTES) console.log(line);
  return crashed ? 1 : 0;
}

process.exitCode = await main();
