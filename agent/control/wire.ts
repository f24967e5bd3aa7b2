// The control socket's language: one JSON object per line each way. Requests are validated here,
// once, where they enter; every client command and the server share these shapes.
// zod's v3 API (shipped inside the zod 4 package): importing zod 4's API costs ~13 MB of RSS, v3's ~2 MB.
import { z } from 'zod/v3';
import type {
  ActionInfo,
  AgentIdentity,
  CallRequest,
  CallResultRow,
  InboxReport,
  InviteResult,
  JoinResult,
  LeaseInfo,
  LeaseResult,
  ListenStarted,
  MeshAgentInfo,
  MeshKeyResult,
  MulticastResult,
  PeerInfo,
  PushEvent,
  PushStarted,
  RekeyResult,
  ResolverInfo,
  RevokeResult,
  RouteInfo,
  SendResult,
  SensorInfo,
  SensorReadResult,
  StatusReport,
  StreamEvent,
  TraceEvent,
  TraceStarted,
  TransferInfo,
  UnreliableSendResult,
  WatchEvent,
} from '../api.js';
import type { JsonObject } from '../protocol/json-cbor.js';
import { MAX_OVERLAP_MS } from '../protocol/trust.js';
import { MAX_INVITE_ATTEMPTS, MAX_INVITE_TTL_MS } from '../trust/invitations.js';

/** Reliable messages one `send` request may queue at once. */
export const MAX_BATCH_MESSAGES = 10_000;

/** A request id: safe integers only (zod 4's int() meant that; v3's int() alone would take 1e20). */
const requestId = z.number().int().safe();

export const requestSchema = z.discriminatedUnion('cmd', [
  z.object({ id: requestId, cmd: z.literal('id') }).strict(),
  z.object({ id: requestId, cmd: z.literal('status') }).strict(),
  z.object({ id: requestId, cmd: z.literal('peers') }).strict(),
  z
    .object({
      id: requestId,
      cmd: z.literal('send'),
      peer: z.string().min(1).max(128),
      /**
       * The payload as base64 (text from the CLI is UTF-8 encoded by the client), or several, queued together
       * and delivered in this order.
       */
      payload: z.union([z.string().base64(), z.array(z.string().base64()).min(1).max(MAX_BATCH_MESSAGES)]),
      timeout_ms: z.number().int().positive().max(3_600_000).optional(),
      /** false: answer once the messages are queued durably, without waiting for the peer's confirmation. */
      wait: z.boolean().optional(),
    })
    .strict(),
  /** One attempt now, no acknowledgement; answered with whether a link took it. */
  z
    .object({
      id: requestId,
      cmd: z.literal('send-unreliable'),
      peer: z.string().min(1).max(128),
      payload: z.string().base64(),
    })
    .strict(),
  z
    .object({
      id: requestId,
      cmd: z.literal('multicast'),
      /** A group name; absent sends to every agent of the mesh. */
      group: z.string().min(1).max(63).optional(),
      payload: z.string().base64(),
    })
    .strict(),
  z.object({ id: requestId, cmd: z.literal('routes') }).strict(),
  z.object({ id: requestId, cmd: z.literal('topology') }).strict(),
  z.object({ id: requestId, cmd: z.literal('transfers') }).strict(),
  z.object({ id: requestId, cmd: z.literal('resolvers') }).strict(),
  z
    .object({
      id: requestId,
      cmd: z.literal('revoke'),
      peer: z.string().min(1).max(128),
      reason: z.string().max(128).optional(),
    })
    .strict(),
  z.object({ id: requestId, cmd: z.literal('mesh-key') }).strict(),
  z
    .object({
      id: requestId,
      cmd: z.literal('invite'),
      ttl_ms: z.number().int().min(1000).max(MAX_INVITE_TTL_MS).optional(),
      attempts: z.number().int().min(1).max(MAX_INVITE_ATTEMPTS).optional(),
      mesh_name: z.string().min(1).max(64).optional(),
    })
    .strict(),
  z
    .object({ id: requestId, cmd: z.literal('invitation'), invitation: z.number().int().min(1).optional() })
    .strict(),
  z.object({ id: requestId, cmd: z.literal('invite-cancel') }).strict(),
  z
    .object({
      id: requestId,
      cmd: z.literal('join'),
      code: z.string().min(1).max(64),
      address: z.string().min(1).max(300).optional(),
      timeout_ms: z.number().int().min(1000).max(3_600_000).optional(),
    })
    .strict(),
  z
    .object({
      id: requestId,
      cmd: z.literal('rekey'),
      // At most the 24 days a rotation record may carry (PROTOCOL.md §13.6); absent: [security] rekey_overlap.
      overlap_ms: z.number().int().min(0).max(MAX_OVERLAP_MS).optional(),
    })
    .strict(),
  z
    .object({
      id: requestId,
      cmd: z.literal('call'),
      /** A peer id or name, "group:NAME" or "all". */
      target: z.string().min(1).max(128),
      action: z.string().min(1).max(63),
      /** The action's arguments: a JSON object (the line was JSON, so its values are JSON). */
      args: z.record(z.unknown()),
      timeout_ms: z.number().int().positive().max(3_600_000),
      /** Fire this long after the agent receives the request, or at this time (ms since the epoch). */
      in_ms: z.number().int().min(0).max(86_400_000).optional(),
      at_ms: z.number().positive().optional(),
      /** Idempotency key: the same key is the same call. */
      key: z.string().min(1).max(128).optional(),
    })
    .strict(),
  z.object({ id: requestId, cmd: z.literal('actions') }).strict(),
  z.object({ id: requestId, cmd: z.literal('leases') }).strict(),
  z.object({ id: requestId, cmd: z.literal('sensors') }).strict(),
  z
    .object({
      id: requestId,
      cmd: z.literal('read'),
      peer: z.string().min(1).max(128),
      sensor: z.string().min(1).max(63),
    })
    .strict(),
  z
    .object({
      id: requestId,
      cmd: z.literal('lease'),
      peer: z.string().min(1).max(128),
      /** An action name on that peer. */
      resource: z.string().min(1).max(63),
      /**
       * acquire: take it for `for_ms`, renewed by this agent meanwhile; hold: take it and keep it while this
       * client stays connected (a stream); release: give it back.
       */
      op: z.enum(['acquire', 'hold', 'release']),
      ttl_ms: z.number().int().min(100).max(3_600_000),
      for_ms: z.number().int().positive().max(86_400_000).optional(),
    })
    .strict(),
  /** Streams a sensor's readings (SensorReadingEvent) every interval until the client disconnects. */
  z
    .object({
      id: requestId,
      cmd: z.literal('watch'),
      peer: z.string().min(1).max(128),
      sensor: z.string().min(1).max(63),
      interval_ms: z.number().int().min(100).max(86_400_000),
    })
    .strict(),
  /**
   * The app inbox's messages for a consumer (default "listen"), then new ones, and best-effort messages as
   * they come; `inbox-take` on the same connection says what was taken. `peek`, `from` or `since_ms`: read
   * without taking.
   */
  z
    .object({
      id: requestId,
      cmd: z.literal('listen'),
      consumer: z.string().min(1).max(128).optional(),
      peek: z.boolean().optional(),
      from: z.string().min(1).max(128).optional(),
      since_ms: z.number().int().nonnegative().safe().optional(),
    })
    .strict(),
  /** The client of this connection's `listen` has (written out) every message up to this inbox id. */
  z
    .object({ id: requestId, cmd: z.literal('inbox-take'), up_to: z.number().int().positive().safe() })
    .strict(),
  z.object({ id: requestId, cmd: z.literal('inbox') }).strict(),
  z
    .object({
      id: requestId,
      cmd: z.literal('inbox-list'),
      from: z.string().min(1).max(128).optional(),
      since_ms: z.number().int().nonnegative().safe().optional(),
      limit: z.number().int().positive().max(100_000).optional(),
    })
    .strict(),
  /** Removes waiting messages up to an inbox id, or all of them. */
  z
    .object({
      id: requestId,
      cmd: z.literal('inbox-clear'),
      up_to: z.number().int().positive().safe().optional(),
    })
    .strict(),
  z.object({ id: requestId, cmd: z.literal('inbox-forget'), consumer: z.string().min(1).max(128) }).strict(),
  /** Opens a stream to a peer (`nearmesh stream`); it lives as long as this client's connection. */
  z
    .object({
      id: requestId,
      cmd: z.literal('stream-open'),
      peer: z.string().min(1).max(128),
      name: z.string().min(1).max(64),
    })
    .strict(),
  /** Bytes for an open stream (base64, at most 1 MiB); answered once the stream took them. */
  z
    .object({
      id: requestId,
      cmd: z.literal('stream-write'),
      stream: z.number().int().positive().safe(),
      data: z.string().base64().max(1_398_104),
    })
    .strict(),
  z
    .object({ id: requestId, cmd: z.literal('stream-end'), stream: z.number().int().positive().safe() })
    .strict(),
  /** Streams opened to `name` on this agent, as events (open, data, end, error) until the client goes. */
  z.object({ id: requestId, cmd: z.literal('stream-receive'), name: z.string().min(1).max(64) }).strict(),
  /** Sends a file (bulk transfer); streams its progress until it is sent or fails for good. */
  z
    .object({
      id: requestId,
      cmd: z.literal('push'),
      peer: z.string().min(1).max(128),
      /** An absolute path the agent can read. */
      path: z
        .string()
        .min(1)
        .max(4096)
        .refine((path) => path.startsWith('/') && !path.includes('\0'), {
          message: 'expected an absolute path',
        }),
      /** The name to offer (default: the file's base name). */
      name: z.string().min(1).max(255).optional(),
      /** Let the chunks take BLE (or the mesh) when the peer has no Wi-Fi link. */
      allow_ble: z.boolean().optional(),
    })
    .strict(),
  /** Streams the frames on the direct link to a peer (TraceEvent) until the client disconnects. */
  z.object({ id: requestId, cmd: z.literal('trace'), peer: z.string().min(1).max(128) }).strict(),
  /** Runs one console line (agent/console) and answers its text: `nearmesh console`. */
  z.object({ id: requestId, cmd: z.literal('console-line'), line: z.string().max(4096) }).strict(),
  /** Tab completion for the text before the cursor of a console line. */
  z.object({ id: requestId, cmd: z.literal('console-complete'), line: z.string().max(4096) }).strict(),
  /** Stops this client's running console lines (a `trace`): the console's Ctrl-C. */
  z.object({ id: requestId, cmd: z.literal('console-cancel') }).strict(),
]);

export type ControlRequest = z.infer<typeof requestSchema>;
export type ControlCommand = ControlRequest['cmd'];
/** The request for command `C`, as validated. */
export type RequestOf<C extends ControlCommand> = Extract<ControlRequest, { cmd: C }>;

/** A validated `call` request as the agent API takes it. */
export function callRequestOf(request: RequestOf<'call'>): CallRequest {
  const { id: _id, cmd: _cmd, ...call } = request;
  // `args` came out of JSON.parse, so every value in it is JSON.
  return { ...call, args: call.args as JsonObject };
}

export interface ControlErrorBody {
  code: string;
  message: string;
}

export type ControlResponse =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: ControlErrorBody }
  | { id: number; event: unknown };

/** A received message as `listen` streams it. */
export interface ListenEvent {
  from: string;
  from_name: string;
  /** The payload as UTF-8 text (invalid sequences replaced). */
  payload: string;
  payload_base64: string;
  received_at: string;
  /** Through the mesh: a group name, or "*" for a message to everyone; absent for a direct message. */
  to?: string;
  /** Hops it travelled (1 over a direct link). */
  hops: number;
  /** Its place in the app inbox (a reliable message): what `inbox-take` names. */
  inbox_id?: number;
}

/** The result of `console-line`. */
export interface ConsoleLineResult {
  output: string;
}

/** The result of `console-complete`: candidates for `word`, the word being typed. */
export interface ConsoleCompleteResult {
  completions: string[];
  word: string;
}

/** What each command answers. The server's dispatch table is checked against it; the client's requests return it. */
export interface ControlResults {
  id: AgentIdentity;
  status: StatusReport;
  peers: PeerInfo[];
  send: SendResult;
  'send-unreliable': UnreliableSendResult;
  multicast: MulticastResult;
  routes: RouteInfo[];
  topology: MeshAgentInfo[];
  transfers: TransferInfo[];
  resolvers: ResolverInfo[];
  revoke: RevokeResult;
  'mesh-key': MeshKeyResult;
  invite: InviteResult;
  invitation: InviteResult;
  'invite-cancel': { cancelled: boolean };
  join: JoinResult;
  rekey: RekeyResult;
  call: CallResultRow[];
  actions: ActionInfo[];
  leases: LeaseInfo[];
  sensors: SensorInfo[];
  read: SensorReadResult;
  lease: LeaseResult;
  watch: { watching: true };
  listen: ListenStarted;
  'inbox-take': { taken_up_to: number };
  inbox: InboxReport;
  'inbox-list': ListenEvent[];
  'inbox-clear': { removed: number };
  'inbox-forget': { forgotten: boolean };
  'stream-open': { stream: number; stream_id: string };
  'stream-write': { bytes_sent: number };
  'stream-end': { bytes: number };
  'stream-receive': { receiving: string };
  push: PushStarted;
  trace: TraceStarted;
  'console-line': ConsoleLineResult;
  'console-complete': ConsoleCompleteResult;
  'console-cancel': { cancelled: number };
}

/** The events a command streams before (or after) its result; commands absent here send none. */
export interface ControlEvents {
  watch: WatchEvent;
  listen: ListenEvent;
  'stream-receive': StreamEvent;
  push: PushEvent;
  trace: TraceEvent;
  'console-line': { output: string };
}

export type StreamingCommand = keyof ControlEvents;
