/**
 * Worker thread entry for one driver task (driver-task.ts): installs the outbound guard with
 * the server's allow-list, announces `ready`, runs the one task it is sent and answers with
 * its result as JSON — or `too-large` when that JSON exceeds the answer limit, or `failed`
 * with the error message. Every message text it sends is scrubbed of the task's secrets.
 * The API side terminates the thread after the answer (or at a limit).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { installOutboundGuard } from '../drivers/kit/outbound.js';
import { scrubberFor } from '../../security/secrets-redact.js';
import type { CheckResult } from '../drivers/types.js';
import type { OutboundGuardSettings } from '../drivers/kit/outbound.js';
import type { PreviewRecord } from '../preview.js';
import { runDriverTask, type DriverTaskMessage, type DriverTaskRequest } from './driver-task.js';

interface DriverWorkerData {
  /** The API thread's guard settings (allow-list and the protected state database). */
  outbound: OutboundGuardSettings;
  maxResultBytes: number;
}

function post(msg: DriverTaskMessage) {
  parentPort!.postMessage(msg);
}

if (parentPort && workerData?.driverTask) {
  const data = workerData.driverTask as DriverWorkerData;
  // Requests from drivers in this thread pass the same guard as in the API process.
  installOutboundGuard(data.outbound);
  parentPort.once('message', (req: DriverTaskRequest) => {
    const scrub = scrubberFor(req.secrets);
    void (async () => {
      try {
        let result = await runDriverTask(req.task);
        if (req.task.kind === 'check') {
          const r = result as CheckResult;
          result = { ok: r.ok, message: scrub(r.message) };
        } else if (req.task.kind === 'preview') {
          for (const r of result as PreviewRecord[]) if (r.error) r.error.message = scrub(r.error.message);
        }
        const json = JSON.stringify(result);
        const bytes = Buffer.byteLength(json);
        if (bytes > data.maxResultBytes) post({ type: 'too-large', bytes });
        else post({ type: 'result', json });
      } catch (err) {
        post({ type: 'failed', error: scrub((err as Error)?.message ?? String(err)) });
      }
    })();
  });
  post({ type: 'ready' });
}
