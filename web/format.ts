/** How times and numbers read on the page. */

export function formatAgo(thenMs: number, nowMs: number): string {
  const s = Math.max(0, Math.round((nowMs - thenMs) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

/** Local date and time to the second, e.g. 2026-11-25 10:02:03. */
export function formatTime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function formatIso(iso: string | null): string {
  return iso === null ? '—' : formatTime(Date.parse(iso));
}

/** At most two decimals, no trailing zeros: readings, not accounting. */
export function formatNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : String(Math.round(n * 100) / 100);
}

export function formatStatus(online: boolean | null): { text: string; className: string } {
  if (online === null) return { text: 'unknown', className: 'badge unknown' };
  return online
    ? { text: 'online', className: 'badge online' }
    : { text: 'offline', className: 'badge offline' };
}

/** One line of JSON, cut to `max` characters, for the timeline. */
export function summarize(value: unknown, max = 120): string {
  const text = JSON.stringify(value) ?? '';
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
