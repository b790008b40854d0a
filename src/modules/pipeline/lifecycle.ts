/**
 * The pipeline state machine (Formance ingester): STOP / INIT / READY / PAUSE.
 * Pure: no I/O. `next` returns the state an action leads to, or null when it is not
 * allowed; `availableActions` lists what is allowed now.
 */
export type PipelineState = 'STOP' | 'INIT' | 'READY' | 'PAUSE';
export type PipelineAction = 'START' | 'STOP' | 'PAUSE' | 'RESUME' | 'RESET';

export const ACTIONS: PipelineAction[] = ['START', 'STOP', 'PAUSE', 'RESUME', 'RESET'];

export function next(state: PipelineState, action: PipelineAction, previousState: PipelineState | null): PipelineState | null {
  switch (action) {
    case 'START':
      return state === 'STOP' ? 'INIT' : null;
    case 'STOP':
      return state === 'STOP' ? null : 'STOP';
    case 'PAUSE':
      return state === 'INIT' || state === 'READY' ? 'PAUSE' : null;
    case 'RESUME':
      return state === 'PAUSE' ? (previousState === 'READY' ? 'READY' : 'INIT') : null;
    case 'RESET':
      return 'INIT';
  }
}

export function availableActions(state: PipelineState, previousState: PipelineState | null): PipelineAction[] {
  return ACTIONS.filter((a) => next(state, a, previousState) !== null);
}

/** States in which the pipeline runs (loads or follows its trigger). */
export function isRunningState(state: PipelineState): boolean {
  return state === 'INIT' || state === 'READY';
}
