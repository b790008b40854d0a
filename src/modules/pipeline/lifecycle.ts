/**
 * The pipeline state machine (Formance ingester): STOP / INIT / READY / PAUSE.
 * Pure: no I/O. `next` returns the state an action leads to, or null when it is not
 * allowed; `availableActions` lists what is allowed now (RUN in the running states,
 * where runPipeline is accepted).
 */
export type PipelineState = 'STOP' | 'INIT' | 'READY' | 'PAUSE';
/** Actions that move the pipeline from one state to another (each has a `<action>Pipeline` mutation). */
export type PipelineTransition = 'START' | 'STOP' | 'PAUSE' | 'RESUME' | 'RESET';
/** What a client may do to the pipeline now: a transition, or RUN (runPipeline: a run without a state change). */
export type PipelineAction = PipelineTransition | 'RUN';

export const TRANSITIONS: PipelineTransition[] = ['START', 'STOP', 'PAUSE', 'RESUME', 'RESET'];
export const ACTIONS: PipelineAction[] = [...TRANSITIONS, 'RUN'];

export function next(state: PipelineState, action: PipelineTransition, previousState: PipelineState | null): PipelineState | null {
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
  const moves: PipelineAction[] = TRANSITIONS.filter((a) => next(state, a, previousState) !== null);
  return isRunningState(state) ? [...moves, 'RUN'] : moves;
}

/** States in which the pipeline runs (loads or follows its trigger). */
export function isRunningState(state: PipelineState): boolean {
  return state === 'INIT' || state === 'READY';
}
