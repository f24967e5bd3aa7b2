// Typed errors of streams. Callers branch on the class (or `code`), never on text. No stream error is
// resumable: a stream that fails is gone with whatever bytes were in flight, and the application opens a
// new one if it wants to go on (bulk transfer, not streams, is the tool for what must survive a drop).
import { NearmeshError } from '../../core/errors.js';
import type { EndCode, RefuseCode } from '../../protocol/stream.js';

export class StreamError extends NearmeshError {
  constructor(
    code: string,
    /** The stream's id as 32 hex digits. */
    readonly streamId: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(code, `stream ${streamId}: ${detail}`, options);
  }
}

/** The listener refused the OPEN: no-listener, busy, refused or bad-name. */
export class StreamRefusedError extends StreamError {
  constructor(
    streamId: string,
    readonly reason: RefuseCode,
    detail: string,
  ) {
    super('stream-refused', streamId, `refused by the peer: ${reason}: ${detail}`);
  }
}

/**
 * The peer reset the stream (END not ok). `reason` closed on an outgoing stream is the EPIPE case: the
 * reader stopped reading before the end.
 */
export class StreamResetError extends StreamError {
  constructor(
    streamId: string,
    readonly reason: EndCode,
    detail: string,
  ) {
    super('stream-reset', streamId, `reset by the peer: ${reason}: ${detail}`);
  }
}

/**
 * Nothing moved on the stream (or no answer to the OPEN) for `timeoutMs`, this side's setting; the peer may
 * be gone. `noticedBy` says whose idle timer fired first: the peer's arrives as its END timeout and is
 * reported the same way, so both sides of a quiet stream see one kind of error.
 */
export class StreamTimeoutError extends StreamError {
  constructor(
    streamId: string,
    /** What we were waiting for: the answer to an OPEN, or any traffic on an open stream. */
    readonly waitingFor: 'accept' | 'activity',
    readonly timeoutMs: number,
    readonly noticedBy: 'here' | 'peer' = 'here',
    peerDetail = '',
  ) {
    const what = waitingFor === 'accept' ? 'no answer to the OPEN' : 'nothing moved either way';
    const detail =
      noticedBy === 'peer'
        ? `the peer timed the stream out: ${peerDetail}`
        : `${what} within ${timeoutMs} ms`;
    super('stream-timeout', streamId, detail);
  }
}

/** The error for the peer's END that is not ok: its idle timeout is a timeout here too, the rest resets. */
export function peerEndError(
  streamId: string,
  code: EndCode,
  detail: string,
  timeoutMs: number,
): StreamError {
  if (code === 'timeout') return new StreamTimeoutError(streamId, 'activity', timeoutMs, 'peer', detail);
  return new StreamResetError(streamId, code, detail);
}

/** The channel could not deliver a message of the stream (the link dropped, or the peer is gone). */
export class StreamLinkError extends StreamError {
  constructor(streamId: string, options?: { cause?: unknown }) {
    const cause = options?.cause instanceof Error ? `: ${options.cause.message}` : '';
    super('stream-link', streamId, `the link to the peer failed${cause}`, options);
  }
}

/** The peer broke the protocol (data beyond its credit, a gap, a wrong length at the end ...). */
export class StreamProtocolError extends StreamError {
  constructor(streamId: string, detail: string) {
    super('stream-protocol', streamId, `the peer broke the protocol: ${detail}`);
  }
}

/** The stream service was closed (the agent is stopping). */
export class StreamClosedError extends StreamError {
  constructor(streamId: string) {
    super('stream-closed', streamId, 'the stream service was closed');
  }
}

/** A name that cannot be opened or listened on: not acceptable (see streamNameProblem), or taken. */
export class StreamNameError extends NearmeshError {
  constructor(
    readonly streamName: string,
    readonly problem: string,
  ) {
    super('stream-bad-name', `stream name ${JSON.stringify(streamName)} ${problem}`);
  }
}
