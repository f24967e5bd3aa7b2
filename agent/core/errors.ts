// Every error nearmesh raises is a class with a stable `name` and a machine-readable `code`, so callers
// branch on the type (instanceof / code), never on message text.

export class NearmeshError extends Error {
  /** Stable, lowercase-dashed identifier, also sent over the control socket. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A frame larger than the medium's or the configured limit. */
export class FrameTooLargeError extends NearmeshError {
  constructor(
    readonly sizeBytes: number,
    readonly limitBytes: number,
  ) {
    super('frame-too-large', `frame of ${sizeBytes} bytes exceeds the limit of ${limitBytes} bytes`);
  }
}

/** The peer is unknown or has no usable link. */
export class PeerUnreachableError extends NearmeshError {
  constructor(
    readonly peer: string,
    reason: string,
    message = `peer ${peer} is unreachable: ${reason}`,
  ) {
    super('peer-unreachable', message);
  }
}

/** A reference (a name, mostly) no agent this one knows goes by: said the same way by every command. */
export class UnknownPeerError extends PeerUnreachableError {
  constructor(reference: string) {
    super(
      reference,
      'unknown peer',
      `no peer "${reference}" is known: \`nearmesh peers\` lists the agents this one knows`,
    );
  }
}

/** A name that more than one identity claims (one owns it, the others are impostors or replacements). */
export class AmbiguousNameError extends NearmeshError {
  constructor(
    readonly claimedName: string,
    /** The ids claiming it, the one that had it first first. */
    readonly ids: readonly string[],
  ) {
    super(
      'ambiguous-name',
      `the name "${claimedName}" is ambiguous: ${ids.join(', ')} claim it (${ids[0]} had it first); use the peer id`,
    );
  }
}

/** An operation ran out of time. */
export class TimeoutError extends NearmeshError {
  constructor(what: string, timeoutMs: number) {
    super('timeout', `${what} timed out after ${timeoutMs} ms`);
  }
}
