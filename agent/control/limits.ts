// The control socket's framing limit, shared by the agent's server and the CLI's client: apart from the
// request schemas (wire.ts), which only the agent needs, so the client starts without loading them.

/** Longest request or response line, newline excluded. */
export const MAX_CONTROL_LINE_BYTES = 4 << 20;
