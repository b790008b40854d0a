/**
 * The one place a DriverContext is made, from plain data: the API process (check, discover,
 * preview) and job workers build it the same way from a workspace's FileScope.
 */
import { FileAccess, type FileScope } from '../../security/file-roots.js';
import type { DriverContext } from './types.js';

export function driverContext(scope: FileScope): DriverContext {
  return { files: new FileAccess(scope) };
}
