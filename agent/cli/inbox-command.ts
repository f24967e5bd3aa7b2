// `nearmesh inbox`: the app inbox (reliable messages received and waiting for their consumers): its
// status and consumers, what waits, clearing it and forgetting a consumer.
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { InboxReport } from '../api.js';
import { addClientOptions, type ClientOptions, printJson, requestOnce } from './client-options.js';
import { formatMessage, parseSince } from './listen-command.js';

interface ListOptions extends ClientOptions {
  from?: string;
  since?: number;
  limit: number;
}

export function registerInboxCommand(program: Command): void {
  const inbox = program
    .command('inbox')
    .description('the app inbox: reliable messages received, waiting until every consumer has taken them');
  addClientOptions(
    inbox
      .command('status', { isDefault: true })
      .description('what waits in the inbox, and its consumers (the default)'),
  ).action(async (options: ClientOptions) => {
    const report = await requestOnce(options, { cmd: 'inbox' });
    if (options.json === true) return printJson(report);
    process.stdout.write(formatInbox(report));
  });
  addClientOptions(
    inbox
      .command('list')
      .description('print the waiting messages, oldest first, without taking them')
      .option('--from <peer>', 'only messages from this peer, id or name')
      .option(
        '--since <time>',
        'only messages received since a duration ago ("10m") or an ISO date',
        parseSince,
      )
      .option('-n, --limit <count>', 'at most this many', parseLimit, 1000),
  ).action(async (options: ListOptions) => {
    const messages = await requestOnce(options, {
      cmd: 'inbox-list',
      limit: options.limit,
      ...(options.from !== undefined && { from: options.from }),
      ...(options.since !== undefined && { since_ms: options.since }),
    });
    if (options.json === true) return printJson(messages);
    for (const message of messages) process.stdout.write(`#${message.inbox_id} ${formatMessage(message)}\n`);
  });
  addClientOptions(
    inbox
      .command('clear')
      .description(
        'remove waiting messages, whoever waits for them: all, or up to an id (`inbox list` shows ids)',
      )
      .option('--up-to <id>', 'only messages up to this id', parseLimit),
  ).action(async (options: ClientOptions & { upTo?: number }) => {
    const result = await requestOnce(options, {
      cmd: 'inbox-clear',
      ...(options.upTo !== undefined && { up_to: options.upTo }),
    });
    if (options.json === true) return printJson(result);
    process.stdout.write(`removed ${result.removed} message${result.removed === 1 ? '' : 's'}\n`);
  });
  addClientOptions(
    inbox
      .command('forget')
      .description('forget a consumer: messages no longer wait for it')
      .argument('<consumer>', 'its name, as `nearmesh inbox` lists it'),
  ).action(async (consumer: string, options: ClientOptions) => {
    const result = await requestOnce(options, { cmd: 'inbox-forget', consumer });
    if (options.json === true) return printJson(result);
    if (!result.forgotten) {
      process.stderr.write(`nearmesh: no inbox consumer named ${JSON.stringify(consumer)}\n`);
      process.exitCode = 1;
      return;
    }
    process.stdout.write(`forgot ${consumer}\n`);
  });
}

export function formatInbox(report: InboxReport): string {
  const oldest = report.oldest_at === null ? '' : `, oldest ${report.oldest_at}`;
  const lines = [
    `inbox     ${report.messages} messages, ${report.bytes} bytes${oldest} ` +
      `(at most ${report.max_messages} / ${report.max_bytes} bytes; when full: ${report.when_full})`,
  ];
  if (report.consumer_list.length === 0) lines.push('consumers none: messages wait for the first one');
  for (const consumer of report.consumer_list)
    lines.push(
      `consumer  ${consumer.name}: ${consumer.waiting} waiting, took up to #${consumer.taken_up_to}, seen ${consumer.seen_at}`,
    );
  return `${lines.join('\n')}\n`;
}

function parseLimit(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1)
    throw new InvalidArgumentError('expected a positive integer');
  return value;
}
