/**
 * An operation's input as query parameters (docs/api.md). `repeat`: an array field repeats its
 * parameter (the streamed bytes form); `comma`: its items are joined with commas (GET /v1/events).
 */
export function inputQuery(input: object, arrays: 'repeat' | 'comma'): URLSearchParams {
  const query = new URLSearchParams();
  for (const [field, value] of Object.entries(input)) {
    if (value === undefined || value === null) continue;
    if (Array.isArray(value)) {
      if (arrays === 'comma') query.append(field, value.map(String).join(','));
      else for (const item of value) query.append(field, String(item));
    } else {
      query.append(field, String(value));
    }
  }
  return query;
}
