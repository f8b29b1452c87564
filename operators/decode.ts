import { DEFAULT_DECODE, type DecodeOptions } from '../lib/io/decode.ts';
import { defineOperator } from '../lib/operator.ts';

/** The decode options a pipeline sets (the runner adds its scratch directory and resume position). */
export type DecodeOperatorOptions = Omit<DecodeOptions, 'tmpDir' | 'skipLines'>;

/**
 * Bytes to records. Implicit as the first step when a pipeline does not name it; name it to
 * change its options. The runner drives it over each input (files, stdin, URLs).
 */
export default defineOperator<DecodeOperatorOptions>({
  name: 'decode',
  summary: 'bytes to records: NDJSON (gzip/zstd by magic bytes), Parquet, Arrow IPC; bad lines become counted, routed errors',
  description:
    'Always the first step (added with its defaults when a pipeline does not list it). Detects gzip and zstd by magic bytes, ' +
    'Parquet ("PAR1") and Arrow IPC by their headers, and reads everything else as NDJSON. A line that is not valid JSON or ' +
    'UTF-8, has no string text, has an empty text, or exceeds maxRecordBytes becomes an error entry (reason, input, line) and ' +
    'the run goes on. A BOM and CRLF line ends are accepted. A truncated gzip/zstd stream keeps every record read before the break.',
  options: {
    format: { type: 'string', enum: ['auto', 'ndjson', 'parquet', 'arrow'], default: DEFAULT_DECODE.format, description: 'input format; auto detects by magic bytes' },
    maxRecordBytes: { type: 'integer', min: 1, default: DEFAULT_DECODE.maxRecordBytes, description: 'longest accepted line in bytes; longer lines are skipped as record_too_large errors without being buffered' },
    textField: { type: 'string', nonEmpty: true, default: DEFAULT_DECODE.textField, description: 'field holding the document text (copied to "text" when different, replacing a "text" the record had: counted as overwrote_text and warned about once)' },
    idField: { type: 'string', nonEmpty: true, default: DEFAULT_DECODE.idField, description: 'field holding the document id (copied to "id" as a string when different, replacing an "id" the record had: counted as overwrote_id and warned about once)' },
    missingId: { type: 'string', enum: ['generate', 'error'], default: DEFAULT_DECODE.missingId, description: 'records without an id: generate "<input file name>:<line>" or count a missing_id error' },
    batchRecords: { type: 'integer', min: 1, max: 1_000_000, default: DEFAULT_DECODE.batchRecords, description: 'records per batch handed to the next step' },
    batchBytes: {
      type: 'integer',
      min: 1,
      default: DEFAULT_DECODE.batchBytes,
      description: 'an NDJSON batch also ends once its lines reach about this many bytes, so long documents travel in smaller batches and the records in flight stay a few MB',
    },
  },
  create() {
    // The runner reads inputs with these options; as a step, decode passes batches through.
    return { process: (batch) => batch };
  },
});
