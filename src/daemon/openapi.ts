/**
 * The API's OpenAPI 3.1 document, served at /openapi.json (and shown at /docs). The request schemas come
 * from the same zod schemas the routes validate with (z.toJSONSchema), so the document cannot drift from
 * what the daemon accepts; the response shapes are written out here and checked against real responses in
 * test/daemon/api.test.ts.
 */
import type { OpenAPIV3 } from 'openapi-types';
import { z } from 'zod';
import { deskrecVersion } from '../util/version';
import { recordOptionsSchema } from './record-options';
import { RECORDING_STATES } from './store';

type Json = Record<string, unknown>;

const error: Json = {
  type: 'object', required: ['error', 'message'],
  properties: { error: { type: 'string', description: 'a stable code (docs/ERRORS.md)' }, message: { type: 'string' } },
};

const segment: Json = {
  type: 'object', required: ['kind', 'file', 'start_ms', 'width', 'height', 'frames', 'duration_ms', 'bytes'],
  properties: {
    kind: { type: 'string', enum: ['mp4', 'png'], description: 'png: numbered frames in frames/ (with mp4+png, the MP4s\' lossless twins)' },
    file: { type: 'string' }, start_ms: { type: 'number', description: "session time of the segment's first frame" }, width: { type: 'integer' }, height: { type: 'integer' }, frames: { type: 'integer' },
    duration_ms: { type: 'number' }, bytes: { type: 'integer' },
    location: { type: 'string', enum: ['local', 's3'], description: 'where the file is: on the daemon\'s disk, or only in S3 (storage.s3; uploaded, verified and deleted locally)' },
    daemon: { type: 'string', description: 'cluster mode: the daemon that recorded the segment (start_ms is then on the recording\'s clock across parts)' },
  },
};

const recording: Json = {
  type: 'object', required: ['id', 'target', 'url', 'state', 'start', 'end', 'dir', 'segments', 'stats', 'error'],
  properties: {
    id: { type: 'string' },
    target: { type: ['string', 'null'], description: 'the configured target, or null for recordings started through the API' },
    url: { type: 'string', description: 'the source URL, without secrets' },
    state: { type: 'string', enum: [...RECORDING_STATES] },
    start: { type: 'string', format: 'date-time' },
    end: { type: ['string', 'null'], format: 'date-time' },
    dir: { type: 'string', description: 'the recording directory, relative to storage.root' },
    segments: { type: 'array', items: { $ref: '#/components/schemas/Segment' } },
    stats: { type: ['object', 'null'], additionalProperties: { type: 'number' } },
    error: { oneOf: [{ type: 'null' }, { $ref: '#/components/schemas/Error' }] },
    daemon: { type: ['string', 'null'], description: 'the daemon recording it now, or that last did (cluster mode: null while it waits in the queue)' },
    parts: {
      type: 'array', description: 'cluster mode: one part per daemon that recorded it, in order (a new part after a take-over)',
      items: {
        type: 'object', required: ['daemon', 'start', 'end'],
        properties: { daemon: { type: 'string' }, start: { type: 'string', format: 'date-time' }, end: { type: ['string', 'null'], format: 'date-time' } },
      },
    },
    updated: { type: 'string', format: 'date-time', description: 'cluster mode: when the recording daemon last wrote it to the cluster state' },
    upload: {
      type: 'object', description: 'uploads of its files to S3 (only with storage.s3)', required: ['pending', 'failed', 'uploaded', 'lastError'],
      properties: {
        pending: { type: 'integer', description: 'files waiting for S3 (queued, uploading, or to be tried again)' },
        failed: { type: 'integer', description: 'of those, the ones whose last attempt failed' },
        uploaded: { type: 'integer', description: 'files uploaded and verified (size and ETag)' },
        lastError: { type: ['string', 'null'] },
      },
    },
  },
};

function jsonSchema(schema: z.ZodType): Json {
  const s = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Json;
  delete s.$schema;
  return s;
}

const responses = (ok: Json): Json => ({
  ...ok,
  400: { description: 'invalid request (the message names the path)', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
  401: { description: 'no or a wrong token', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
  404: { description: 'no such recording', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
});

const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^[a-z0-9]{12}$' } };
const recordingResponse = { description: 'the recording', content: { 'application/json': { schema: { $ref: '#/components/schemas/Recording' } } } };

/** The document. */
export function openApiDocument(): OpenAPIV3.Document {
  const startBody = {
    type: 'object', additionalProperties: false,
    properties: {
      url: { type: 'string', description: 'vnc://, spice://, spice+tls:// or test:// (no password in it)' },
      target: { type: 'string', description: 'the name of a configured target, instead of url' },
      'password-file': { type: 'string', description: 'absolute path of a file whose first line is the password' },
      options: jsonSchema(recordOptionsSchema),
    },
  };
  const doc: Json = {
    openapi: '3.1.0',
    info: { title: 'deskrec daemon', version: deskrecVersion(), description: 'Records VNC and SPICE sessions. Every route but /healthz needs `Authorization: Bearer TOKEN`.' },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: { Error: error, Segment: segment, Recording: recording },
    },
    security: [{ bearer: [] }],
    paths: {
      '/healthz': {
        get: { summary: 'liveness and disk state', security: [], responses: { 200: { description: 'healthy' }, 503: { description: 'disk below the floor, or draining' } } },
      },
      '/metrics': { get: { summary: 'Prometheus metrics', responses: { 200: { description: 'text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } } } } },
      '/recordings': {
        post: {
          summary: 'start a recording',
          requestBody: { required: true, content: { 'application/json': { schema: startBody } } },
          responses: responses({
            201: { description: 'started; Location names it', headers: { Location: { schema: { type: 'string' } } }, content: { 'application/json': { schema: { $ref: '#/components/schemas/Recording' } } } },
            503: { description: 'the daemon is shutting down' }, 507: { description: 'too little free space' },
          }),
        },
        get: {
          summary: 'list recordings, newest first',
          parameters: [
            { name: 'target', in: 'query', schema: { type: 'string' } },
            { name: 'state', in: 'query', schema: { type: 'string', enum: [...RECORDING_STATES] } },
            { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0, default: 0 } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
          ],
          responses: responses({
            200: {
              description: 'a page of recordings',
              content: { 'application/json': { schema: { type: 'object', required: ['recordings', 'total'], properties: { recordings: { type: 'array', items: { $ref: '#/components/schemas/Recording' } }, total: { type: 'integer' }, offset: { type: 'integer' }, limit: { type: 'integer' } } } } },
            },
          }),
        },
      },
      '/recordings/{id}': {
        parameters: [idParam],
        get: { summary: 'one recording', responses: responses({ 200: recordingResponse }) },
        delete: { summary: 'stop a recording (its files stay); returns when they are finished', responses: responses({ 200: recordingResponse }) },
      },
      '/recordings/{id}/files': {
        parameters: [idParam],
        delete: { summary: 'remove a finished recording (and its objects in S3)', responses: responses({ 204: { description: 'removed' }, 409: { description: 'still recording' }, 502: { description: 'S3_ERROR: its objects could not be deleted (nothing was)' } }) },
      },
      '/recordings/{id}/segments/{n}': {
        parameters: [idParam, { name: 'n', in: 'path', required: true, schema: { type: 'integer', minimum: 0 } }],
        get: {
          summary: 'segment n as MP4 (Range requests supported), from the local disk or, once it is only there, from S3',
          responses: responses({ 200: { description: 'the file', content: { 'video/mp4': { schema: { type: 'string', format: 'binary' } } } }, 206: { description: 'part of it' }, 502: { description: 'S3_ERROR: the segment is only in S3, which failed' } }),
        },
      },
      '/recordings/{id}/session.json': {
        parameters: [idParam],
        get: { summary: "the recorder's session.json", responses: responses({ 200: { description: 'session.json', content: { 'application/json': { schema: { type: 'object' } } } } }) },
      },
    },
  };
  // Written as plain JSON above (typing every nested object would triple its length); the 3.0 type is what
  // @fastify/swagger takes, the document itself is 3.1 (type arrays for nullable fields).
  return doc as unknown as OpenAPIV3.Document;
}
