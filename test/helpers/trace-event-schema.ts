/**
 * A JSON schema for the Chrome Trace Event Format's JSON Object Format (Google's "Trace Event
 * Format" document, the format Perfetto's UI and chrome://tracing load), restricted to the event
 * types dmalab writes: duration events (B/E), complete events (X, with dur), instant events (i, with
 * scope s = g | p | t) and metadata events (M: process_name / thread_name with args.name).
 */

const common = {
  name: { type: 'string', minLength: 1 },
  cat: { type: 'string' },
  ts: { type: 'number', minimum: 0 },
  pid: { type: 'integer', minimum: 0 },
  tid: { type: 'integer', minimum: 0 },
  args: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } },
} as const

export const TRACE_EVENT_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  type: 'object',
  required: ['traceEvents'],
  properties: {
    traceEvents: {
      type: 'array',
      items: {
        oneOf: [
          {
            type: 'object',
            required: ['name', 'ph', 'ts', 'pid', 'tid'],
            properties: { ...common, ph: { enum: ['B', 'E'] } },
            additionalProperties: false,
          },
          {
            type: 'object',
            required: ['name', 'ph', 'ts', 'pid', 'tid', 'dur'],
            properties: { ...common, ph: { const: 'X' }, dur: { type: 'number', minimum: 0 } },
            additionalProperties: false,
          },
          {
            type: 'object',
            required: ['name', 'ph', 'ts', 'pid', 'tid', 's'],
            properties: { ...common, ph: { const: 'i' }, s: { enum: ['g', 'p', 't'] } },
            additionalProperties: false,
          },
          {
            type: 'object',
            required: ['name', 'ph', 'pid', 'tid', 'args'],
            properties: {
              ...common,
              ph: { const: 'M' },
              name: { enum: ['process_name', 'thread_name', 'process_sort_index', 'thread_sort_index'] },
              args: { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1 } } },
            },
            additionalProperties: false,
          },
        ],
      },
    },
    displayTimeUnit: { enum: ['ms', 'ns'] },
    otherData: { type: 'object' },
  },
  additionalProperties: false,
} as const
