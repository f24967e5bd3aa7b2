// `nearmesh invite` and `nearmesh join CODE`: add a device to the mesh with a short code instead of copying
// the mesh key. invite opens an invitation on this agent (founding a mesh if it has none), prints the code
// and waits until a device joined, the invitation expired or too many wrong codes closed it (Ctrl-C closes
// it at once). join, on the new device's agent, finds the inviter on the LAN and takes the mesh key.
import type { Command } from 'commander';
import type { InviteResult } from '../api.js';
import { parseDuration } from '../core/duration.js';
import { parseInviteCode } from '../security/join-code.js';
import {
  addClientOptions,
  type ClientOptions,
  connectToAgent,
  printJson,
  requestOnce,
} from './client-options.js';

const POLL_MS = 500;

interface InviteOptions extends ClientOptions {
  for?: string;
  attempts?: string;
  meshName?: string;
  wait?: boolean;
  /** Print the join command as a QR code too (default: when standard output is a terminal). */
  qr?: boolean;
}

interface JoinOptions extends ClientOptions {
  address?: string;
  timeout?: string;
}

export function registerJoinCommands(program: Command): void {
  addClientOptions(
    program
      .command('invite')
      .description(
        'let one new device join this mesh with a short code (founds a mesh if this agent has none)',
      )
      .option('-f, --for <duration>', 'how long the code is valid (default 5m, at most 60m)')
      .option('-a, --attempts <n>', 'wrong codes allowed before the invitation closes (default 3)')
      .option('-m, --mesh-name <name>', 'name of the mesh this invite founds (default: <agent name>-mesh)')
      .option('--no-wait', 'print the code and return at once')
      .option('--qr', 'also print the join command as a QR code, for a phone to show (default on a terminal)')
      .option('--no-qr', 'no QR code'),
  ).action(async (options: InviteOptions) => {
    const client = await connectToAgent(options);
    try {
      const opened = await client.request({
        cmd: 'invite',
        ...(options.for !== undefined && { ttl_ms: parseDuration(options.for) }),
        ...(options.attempts !== undefined && { attempts: Number(options.attempts) }),
        ...(options.meshName !== undefined && { mesh_name: options.meshName }),
      });
      if (options.json === true) printJson(opened);
      else await printInvitation(opened, options.qr ?? process.stdout.isTTY === true);
      if (options.wait === false) return;
      let cancelled = false;
      const cancel = (): void => {
        cancelled = true;
        void client.request({ cmd: 'invite-cancel' }).finally(() => process.exit(130));
      };
      process.once('SIGINT', cancel);
      process.once('SIGTERM', cancel);
      let status = opened;
      while (status.state === 'open' && !cancelled) {
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        status = await client.request({ cmd: 'invitation', invitation: opened.id });
      }
      if (cancelled) return;
      if (options.json === true) printJson(status);
      else process.stdout.write(`${outcomeLine(status)}\n`);
      if (status.state !== 'joined') process.exitCode = 1;
    } finally {
      client.close();
    }
  });

  addClientOptions(
    program
      .command('invitation')
      .description('show the last invitation: open, joined (by whom), expired or closed')
      .option('--cancel', 'close the open invitation now'),
  ).action(async (options: ClientOptions & { cancel?: boolean }) => {
    if (options.cancel === true) {
      const result = await requestOnce(options, { cmd: 'invite-cancel' });
      if (options.json === true) return printJson(result);
      process.stdout.write(result.cancelled ? 'invitation closed\n' : 'no invitation was open\n');
      return;
    }
    const status = await requestOnce(options, { cmd: 'invitation' });
    if (options.json === true) return printJson(status);
    process.stdout.write(
      status.state === 'open'
        ? `invitation ${status.code} open until ${status.expires_at}, ${status.attempts_left} tries left\n`
        : `${outcomeLine(status)}\n`,
    );
  });

  addClientOptions(
    program
      .command('join')
      .description('join the mesh of the agent showing this invitation code (run `nearmesh invite` there)')
      .argument('<code>', 'the code `nearmesh invite` printed, e.g. 1234-5678-901')
      .option('-a, --address <host:port>', "the inviter's link address, when the LAN hides it (no multicast)")
      .option('-t, --timeout <duration>', 'how long to look for the inviter (default 60s)'),
  ).action(async (code: string, options: JoinOptions) => {
    // A typo is caught here, before the agent is asked, so it never costs one of the invitation's tries.
    parseInviteCode(code);
    if (options.json !== true) process.stdout.write('looking for the inviting agent...\n');
    const result = await requestOnce(options, {
      cmd: 'join',
      code,
      ...(options.address !== undefined && { address: options.address }),
      ...(options.timeout !== undefined && { timeout_ms: parseDuration(options.timeout) }),
    });
    if (options.json === true) return printJson(result);
    process.stdout.write(
      `joined mesh "${result.mesh}" through ${result.inviter.name} (${result.inviter.peer}) at ${result.address}\n` +
        'this agent now links with the mesh: `nearmesh peers` shows who it reaches\n',
    );
  });
}

async function printInvitation(opened: InviteResult, withQr: boolean): Promise<void> {
  const minutes = Math.max(1, Math.round((Date.parse(opened.expires_at) - Date.now()) / 60_000));
  const command = `nearmesh join ${opened.code}`;
  const lines = [
    ...(opened.founded ? [`founded mesh "${opened.mesh}": this agent holds its key`] : []),
    `invitation code: ${opened.code}  (mesh "${opened.mesh}", valid ${minutes} min, ${opened.attempts_left} tries)`,
    `on the new device run:  ${command}`,
  ];
  if (withQr) {
    // Loaded only here: every other command starts without it. The QR holds the command, for a phone to show
    // next to the new device; the code alone is never enough to join without this invitation open.
    const { renderUnicodeCompact } = await import('uqr');
    lines.push(renderUnicodeCompact(command, { border: 2 }));
  }
  lines.push('waiting for it to join (Ctrl-C closes the invitation)...');
  process.stdout.write(`${lines.join('\n')}\n`);
}

function outcomeLine(status: InviteResult): string {
  switch (status.state) {
    case 'joined':
      return `${status.joined?.name} (${status.joined?.peer}) joined mesh "${status.mesh}"`;
    case 'expired':
      return 'the invitation expired unused: run `nearmesh invite` again';
    case 'failed':
      return 'the invitation closed after too many wrong codes: run `nearmesh invite` again';
    default:
      return `the invitation was ${status.state}`;
  }
}
