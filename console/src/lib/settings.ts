// Console settings, read on the server from the environment.

/** The gateway's address as people reach it, for the lines pasted into Claude Code's shell. */
export function publicGatewayUrl(): string {
  return process.env.CCP_CONSOLE_GATEWAY_URL ?? "http://localhost:8080";
}

/** The time zone dates are shown in (an IANA name); UTC unless set. */
export function displayTimeZone(): string {
  const tz = process.env.CCP_CONSOLE_TIME_ZONE ?? "UTC";
  try {
    new Intl.DateTimeFormat("en", { timeZone: tz });
    return tz;
  } catch {
    return "UTC";
  }
}
