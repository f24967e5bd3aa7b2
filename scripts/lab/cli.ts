#!/usr/bin/env node
// The lab for people: `npm run lab -- up chain 3` builds the namespaces, starts one agent in each (linked
// only to its neighbours) and records what it started in a state directory, so later `cut`, `status` and
// `down` runs find the lab again. Needs root and a built tree (npm run build).
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createConnection } from 'node:net';
import { join, resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import { LOG_LEVELS } from '../../agent/config/schema.js';
import { formatTable } from '../../agent/console/table.js';
import { NearmeshError } from '../../agent/core/errors.js';
import { deleteLabNamespaces, Lab, LabError } from './lab.js';
import { type Topology, topologyFromSpec } from './topology.js';

const DEFAULT_ROOT = '/run/nearmesh-lab';
const STATE_FILE = 'lab.json';
const AGENT_CLI = resolve(import.meta.dirname, '../../agent/cli/main.js');
const AGENT_READY_MS = 20_000;
const AGENT_STOP_MS = 5_000;

interface AgentRecord {
  node: string;
  namespace: string;
  pid: number;
  config: string;
  socket: string;
  log: string;
}

/** What `up` leaves behind in <root>/<label>/lab.json for the commands that come after. */
interface LabState {
  label: string;
  spec: string;
  topology: Topology;
  rateMbit?: number;
  lossPercent?: number;
  port: number;
  agents: AgentRecord[];
}

function stateDir(root: string, label: string): string {
  return join(root, label);
}

function writeState(root: string, state: LabState): void {
  writeFileSync(join(stateDir(root, state.label), STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
}

function readState(root: string, label: string): LabState {
  const path = join(stateDir(root, label), STATE_FILE);
  if (!existsSync(path)) throw new LabError(`no lab "${label}" under ${root} (no ${path})`);
  return JSON.parse(readFileSync(path, 'utf8')) as LabState;
}

function labelsUnder(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root).filter((name) => existsSync(join(root, name, STATE_FILE)));
}

/** The label given, or the only lab under root. */
function pickLabel(root: string, label: string | undefined): string {
  if (label !== undefined) return label;
  const labels = labelsUnder(root);
  if (labels.length === 1) return labels[0] as string;
  if (labels.length === 0) throw new LabError(`no lab is up under ${root}`);
  throw new LabError(`several labs are up (${labels.join(', ')}): name one with --label`);
}

function agentToml(options: {
  node: string;
  dir: string;
  meshKey: string;
  port: number;
  peers: string[];
  logLevel: string;
}): string {
  return [
    `name = ${JSON.stringify(options.node)}`,
    `data_dir = ${JSON.stringify(options.dir)}`,
    `mesh_key = ${JSON.stringify(options.meshKey)}`,
    `log_level = ${JSON.stringify(options.logLevel)}`,
    '[wifi]',
    `listen = "0.0.0.0:${options.port}"`,
    // Neighbours come from the static peer list only: mDNS would not cross the links anyway, but say so.
    'discovery = []',
    '[ble]',
    'enabled = false',
    '[mqtt]',
    'listen = false',
    ...options.peers.flatMap((address) => ['[[peers]]', `address = ${JSON.stringify(address)}`]),
    '',
  ].join('\n');
}

/** Whether `pid` is still the agent we started with `config` (a recycled pid is someone else's). */
function isOurAgent(agent: AgentRecord): boolean {
  try {
    return readFileSync(`/proc/${agent.pid}/cmdline`, 'utf8').split('\0').includes(agent.config);
  } catch {
    return false;
  }
}

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolveAnswer) => {
    const socket = createConnection(path);
    socket.once('connect', () => {
      socket.destroy();
      resolveAnswer(true);
    });
    socket.once('error', () => resolveAnswer(false));
  });
}

const sleep = (ms: number) => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));

async function waitForAgent(agent: AgentRecord): Promise<void> {
  const deadline = Date.now() + AGENT_READY_MS;
  for (;;) {
    if (!isOurAgent(agent)) throw new LabError(`agent ${agent.node} exited; its log:\n${tail(agent.log)}`);
    if (await socketAnswers(agent.socket)) return;
    if (Date.now() > deadline)
      throw new LabError(
        `agent ${agent.node} not ready after ${AGENT_READY_MS} ms; its log:\n${tail(agent.log)}`,
      );
    await sleep(100);
  }
}

function tail(path: string, lines = 20): string {
  return existsSync(path)
    ? readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
    : '(no log)';
}

function startAgent(lab: Lab, node: string, dir: string, config: string): AgentRecord {
  const log = join(dir, 'agent.log');
  const out = openSync(log, 'a');
  const namespace = lab.namespaceOf(node);
  // `ip netns exec` execs the command in place, so the pid we record is the agent's own.
  const child = spawn(
    'ip',
    ['netns', 'exec', namespace, process.execPath, AGENT_CLI, 'agent', '--config', config],
    {
      detached: true,
      stdio: ['ignore', out, out],
      env: { ...process.env, NEARMESH_CONFIG: undefined, NEARMESH_SOCKET: undefined },
    },
  );
  closeSync(out);
  child.unref();
  if (child.pid === undefined) throw new LabError(`could not start the agent for ${node}`);
  return { node, namespace, pid: child.pid, config, socket: join(dir, 'control.sock'), log };
}

function signal(agent: AgentRecord, name: NodeJS.Signals): void {
  if (!isOurAgent(agent)) return;
  try {
    process.kill(agent.pid, name);
  } catch {
    // It exited between the check and the signal: what we wanted.
  }
}

async function stopAgents(agents: AgentRecord[]): Promise<void> {
  for (const agent of agents) signal(agent, 'SIGTERM');
  const deadline = Date.now() + AGENT_STOP_MS;
  while (agents.some(isOurAgent) && Date.now() < deadline) await sleep(100);
  for (const agent of agents) signal(agent, 'SIGKILL');
}

function labOf(state: LabState): Lab {
  return new Lab(state.topology, state.label, {
    ...(state.rateMbit === undefined ? {} : { rateMbit: state.rateMbit }),
    ...(state.lossPercent === undefined ? {} : { lossPercent: state.lossPercent }),
  });
}

interface UpOptions {
  label?: string;
  dir: string;
  rateMbit?: number;
  loss?: number;
  port: number;
  logLevel: string;
}

async function up(kind: string, size: string, options: UpOptions): Promise<void> {
  if (!existsSync(AGENT_CLI)) throw new LabError(`${AGENT_CLI} is missing: run npm run build first`);
  const topology = topologyFromSpec(kind, size);
  const label = options.label ?? `l${process.pid}`;
  const dir = stateDir(options.dir, label);
  if (existsSync(join(dir, STATE_FILE)))
    throw new LabError(`lab "${label}" is already up: lab down ${label} first`);
  const state: LabState = {
    label,
    spec: `${kind} ${size}`,
    topology,
    ...(options.rateMbit === undefined ? {} : { rateMbit: options.rateMbit }),
    ...(options.loss === undefined ? {} : { lossPercent: options.loss }),
    port: options.port,
    agents: [],
  };
  const lab = labOf(state);
  mkdirSync(dir, { recursive: true });
  lab.create();
  try {
    const meshKey = generateMeshKey();
    for (const node of topology.nodes) {
      const nodeDir = join(dir, node);
      mkdirSync(nodeDir, { recursive: true });
      const config = join(nodeDir, 'nearmesh.toml');
      const peers = lab.peerAddresses(node, options.port);
      writeFileSync(
        config,
        agentToml({ node, dir: nodeDir, meshKey, port: options.port, peers, logLevel: options.logLevel }),
      );
      state.agents.push(startAgent(lab, node, nodeDir, config));
      // Recorded after every start, so `down` finds every agent even if this run dies half way.
      writeState(options.dir, state);
    }
    await Promise.all(state.agents.map(waitForAgent));
  } catch (error) {
    await stopAgents(state.agents);
    lab.destroy();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  printNodes(state, lab);
  const first = state.agents[0] as AgentRecord;
  process.stdout.write(
    `\nlab ${label} is up (${state.spec}, ${topology.edges.length} links). Try:\n` +
      `  node ${AGENT_CLI} peers --socket ${first.socket}\n` +
      `  ip netns exec ${first.namespace} ip -br addr\n` +
      `  npm run lab -- cut ${topology.edges[0]?.join(' ')} --label ${label}\n` +
      `  npm run lab -- down ${label}\n`,
  );
}

function printNodes(state: LabState, lab: Lab): void {
  const rows = state.agents.map((agent) => [
    agent.node,
    agent.namespace,
    isOurAgent(agent) ? String(agent.pid) : 'stopped',
    lab
      .neighbours(agent.node)
      .map((neighbour) => `${neighbour.node}@${neighbour.address}`)
      .join(' '),
    agent.socket,
  ]);
  process.stdout.write(formatTable(['NODE', 'NAMESPACE', 'AGENT', 'NEIGHBOURS', 'CONTROL SOCKET'], rows));
}

function printLinks(state: LabState, lab: Lab): void {
  const rows = state.topology.edges.map(([a, b]) => {
    const status = lab.linkStatus(a, b);
    return [`${a}-${b}`, status.up ? 'up' : 'cut', `${status.lossPercent}%`, status.rate ?? '-'];
  });
  process.stdout.write(formatTable(['LINK', 'STATE', 'LOSS', 'RATE'], rows));
}

async function down(label: string | undefined, options: { dir: string }): Promise<void> {
  const chosen = pickLabel(options.dir, label);
  const dir = stateDir(options.dir, chosen);
  if (existsSync(join(dir, STATE_FILE))) await stopAgents(readState(options.dir, chosen).agents);
  // Namespaces go even without a state file: a crashed `up` may leave some behind.
  deleteLabNamespaces(chosen);
  rmSync(dir, { recursive: true, force: true });
  process.stdout.write(`lab ${chosen} is down\n`);
}

function status(label: string | undefined, options: { dir: string; json?: boolean }): void {
  const labels = label === undefined ? labelsUnder(options.dir) : [label];
  if (labels.length === 0) return void process.stdout.write(`no lab is up under ${options.dir}\n`);
  const states = labels.map((chosen) => readState(options.dir, chosen));
  if (options.json === true) {
    const view = states.map((state) => {
      const lab = labOf(state);
      return {
        ...state,
        agents: state.agents.map((agent) => ({ ...agent, running: isOurAgent(agent) })),
        links: state.topology.edges.map(([a, b]) => ({ a, b, ...lab.linkStatus(a, b) })),
      };
    });
    return void process.stdout.write(`${JSON.stringify(view)}\n`);
  }
  for (const state of states) {
    const lab = labOf(state);
    process.stdout.write(`lab ${state.label}: ${state.spec}\n`);
    printNodes(state, lab);
    printLinks(state, lab);
  }
}

function withLab(options: { label?: string; dir: string }, change: (lab: Lab) => void): void {
  change(labOf(readState(options.dir, pickLabel(options.dir, options.label))));
}

function number(what: string, integer: boolean) {
  return (text: string): number => {
    const value = Number(text);
    if (text.trim() === '' || !Number.isFinite(value) || (integer && !Number.isInteger(value)))
      throw new InvalidArgumentError(`${what} must be ${integer ? 'an integer' : 'a number'}`);
    return value;
  };
}

const program = new Command('lab')
  .description('network-namespace lab: agents in namespaces linked only to their neighbours (needs root)')
  .exitOverride();
const dirOption = [
  '--dir <path>',
  'where lab state lives',
  process.env.NEARMESH_LAB_DIR ?? DEFAULT_ROOT,
] as const;

program
  .command('up')
  .description('build a topology and start one agent per node: up chain 3 | ring 5 | grid 3 | grid 2x4')
  .argument('<kind>', 'chain, ring or grid')
  .argument('<size>', 'nodes (chain, ring) or N / RxC (grid)')
  .option('--rate-mbit <n>', 'shape every link to this rate (tc tbf)', number('--rate-mbit', false))
  .option(
    '--loss <percent>',
    'drop this percent of packets on every link, each way (nftables)',
    number('--loss', true),
  )
  .option('--label <label>', 'lab name, 1..12 of [a-z0-9] (default l<pid>)')
  .option('--port <port>', 'agent port inside every namespace', number('--port', true), 7450)
  .option('--log-level <level>', `agent log level (${LOG_LEVELS.join(', ')})`, 'info')
  .option(...dirOption)
  .action(up);

program
  .command('down')
  .description('stop the agents this lab started and delete its namespaces')
  .argument('[label]', 'which lab (default: the only one)')
  .option(...dirOption)
  .action(down);

program
  .command('status')
  .description('nodes, agents and links of every lab (or one)')
  .argument('[label]')
  .option('--json', 'one JSON document')
  .option(...dirOption)
  .action(status);

for (const [name, description, change] of [
  ['cut', 'take the link between two neighbours down', (lab: Lab, a: string, b: string) => lab.cut(a, b)],
  ['restore', 'bring a cut link back up', (lab: Lab, a: string, b: string) => lab.restore(a, b)],
] as const) {
  program
    .command(name)
    .description(description)
    .argument('<a>')
    .argument('<b>')
    .option('--label <label>', 'which lab (default: the only one)')
    .option(...dirOption)
    .action((a: string, b: string, options: { label?: string; dir: string }) =>
      withLab(options, (lab) => change(lab, a, b)),
    );
}

program
  .command('loss')
  .description('set the loss percent of one link (0 turns it off)')
  .argument('<a>')
  .argument('<b>')
  .argument('<percent>', 'integer 0..100', number('percent', true))
  .option('--label <label>', 'which lab (default: the only one)')
  .option(...dirOption)
  .action((a: string, b: string, percent: number, options: { label?: string; dir: string }) =>
    withLab(options, (lab) => lab.setLoss(a, b, percent)),
  );

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) process.exit(error.exitCode);
  const message = error instanceof NearmeshError ? error.message : String(error);
  process.stderr.write(`lab: ${message}\n`);
  process.exit(1);
}
