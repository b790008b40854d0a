/** Errors of the files module that are not GraphQL results (the upload path is plain HTTP). */

/** An upload body larger than SLUICE_MAX_UPLOAD_BYTES; nothing was kept. HTTP 413. */
export class UploadTooLargeError extends Error {
  readonly code = 'PAYLOAD_TOO_LARGE' as const;
  constructor(readonly maxBytes: number) {
    super(`the file is larger than ${maxBytes} bytes (SLUICE_MAX_UPLOAD_BYTES); nothing was written`);
    this.name = 'UploadTooLargeError';
  }
}

/** The client went away before the whole body arrived; nothing was kept. */
export class UploadAbortedError extends Error {
  constructor() {
    super('the upload was interrupted before the body ended; nothing was written');
    this.name = 'UploadAbortedError';
  }
}
