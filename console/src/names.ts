/** A custodian's plain name when its bytes are printable UTF-8, else null (the base64 is shown). */
export function plainName(custodian: string): string | null {
  if (custodian === '*') return '*';
  try {
    const bytes = Uint8Array.from(atob(custodian), (c) => c.charCodeAt(0));
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return /^[\x20-\x7e\u00a0-\uffff]+$/.test(text) && !/[\u2028\u2029]/.test(text) ? text : null;
  } catch {
    return null;
  }
}

export function scopeId(custodian: string, namespace: string): string {
  return `${custodian}:${namespace}`;
}

export function shortHash(hash: string): string {
  return `${hash.slice(0, 10)}…`;
}

export function formatTime(iso: string | null): string {
  if (iso === null) return '–';
  const d = new Date(iso);
  return Number.isNaN(d.getTime())
    ? iso
    : d
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z');
}
