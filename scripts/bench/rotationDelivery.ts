import { Agent, request } from 'node:https';
import { type EventStreamClient, openEventStream } from '../../test/helpers/eventStream.js';

export interface DeliveryOptions {
  readonly url: string;
  readonly ca: Buffer;
  /** Rotates the scope (operate on it). */
  readonly operator: string;
  /** Subscribes (audit over the scope's custodian). */
  readonly auditor: string;
  /** `<custodian>:<namespace>`, key management enabled. */
  readonly scope: string;
  readonly subscribers: number;
  readonly warmup: number;
  readonly rotations: number;
}

export interface Delivery {
  /** One figure per (rotation, subscriber): ms from the POST's start to the event's arrival. */
  readonly latenciesMs: number[];
  /** Per rotation: ms to the first and to the last subscriber reached. */
  readonly firstMs: number[];
  readonly lastMs: number[];
  /** ms from each POST's start to its answer. */
  readonly postMs: number[];
}

/**
 * Rotation → delivery over server-sent events: `subscribers` streams open on `GET /v1/events`, then
 * rotations one at a time (`POST /v1/rotate-managed-key` over a keep-alive connection); for each,
 * the time from the POST's start until each stream received the event at the position the answer
 * names. The next rotation starts once every stream has it. The streams all read in this one
 * process: the figure includes this client's own TLS and parsing work for every stream.
 */
export async function rotationDelivery(options: DeliveryOptions): Promise<Delivery> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: options.ca });
  const streams: EventStreamClient[] = [];
  const arrivals: Map<string, number>[] = [];
  try {
    for (let i = 0; i < options.subscribers; i++) {
      const stream = await openEventStream(new URL('/v1/events?from=now', options.url).toString(), {
        ca: options.ca,
        token: options.auditor,
      });
      if (stream.status !== 200) throw new Error(`GET /v1/events: ${stream.status} ${await stream.body}`);
      streams.push(stream);
      const seen = new Map<string, number>();
      arrivals.push(seen);
      let parsed = 0;
      // Runs after the helper's own data listener has parsed the chunk into `events`.
      stream.response.on('data', () => {
        const now = performance.now();
        for (; parsed < stream.events.length; parsed++) seen.set(stream.events[parsed]?.id ?? '', now);
      });
    }
    const latenciesMs: number[] = [];
    const postMs: number[] = [];
    const firstMs: number[] = [];
    const lastMs: number[] = [];
    for (let i = 0; i < options.warmup + options.rotations; i++) {
      const started = performance.now();
      const position = await rotate(agent, options);
      const answered = performance.now();
      await Promise.all(streams.map((s) => s.until(() => s.events.some((e) => e.id === position), 10_000)));
      if (i < options.warmup) continue;
      postMs.push(answered - started);
      const these = arrivals.map((seen) => (seen.get(position) ?? Number.NaN) - started);
      latenciesMs.push(...these);
      firstMs.push(Math.min(...these));
      lastMs.push(Math.max(...these));
    }
    return { latenciesMs, firstMs, lastMs, postMs };
  } finally {
    for (const stream of streams) stream.close();
    agent.destroy();
  }
}

/** One rotation; answers the position of the event it wrote. */
function rotate(agent: Agent, options: DeliveryOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL('/v1/rotate-managed-key', options.url),
      {
        method: 'POST',
        agent,
        headers: { authorization: `Bearer ${options.operator}`, 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        res.on('error', reject);
        res.on('end', () => {
          const answer = JSON.parse(text) as { rotated?: boolean; position?: string | null };
          if (res.statusCode !== 200 || answer.rotated !== true || typeof answer.position !== 'string') {
            reject(new Error(`rotate-managed-key: ${res.statusCode} ${text.slice(0, 300)}`));
          } else resolve(answer.position);
        });
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ scope: options.scope }));
  });
}
