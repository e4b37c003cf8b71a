import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import { type Problem, problemOf } from './problem.js';

export const PROBLEM_TYPE = 'application/problem+json';

/** Headers every problem carries: 401 names the scheme, 429 when to retry. */
function problemHeaders(problem: Problem): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': PROBLEM_TYPE };
  if (problem.status === 401) headers['www-authenticate'] = 'Bearer realm="keyledger"';
  const retry = problem.details.retryAfterSeconds;
  if (problem.status === 429 && typeof retry === 'number') headers['retry-after'] = String(retry);
  return headers;
}

/** Answers a failure as application/problem+json through Fastify. */
export function sendProblem(reply: FastifyReply, error: unknown): Problem {
  const problem = problemOf(error, String(reply.request.id));
  reply.code(problem.status).headers(problemHeaders(problem)).send(JSON.stringify(problem));
  return problem;
}

/** The same on a hijacked response (streams): only while nothing else was written. */
export function writeProblem(raw: ServerResponse, error: unknown, requestId: string): Problem {
  const problem = problemOf(error, requestId);
  raw.writeHead(problem.status, { ...problemHeaders(problem), 'x-request-id': requestId });
  raw.end(JSON.stringify(problem));
  return problem;
}
