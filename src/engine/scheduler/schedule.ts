/**
 * Schedules: a cron expression in a time zone, or "every N units" from an anchor.
 * Pure (no timers): `validateSchedule` names every problem; `nextFire` returns the first
 * fire time strictly after a moment.
 */
import cronParser from 'cron-parser';

export type ScheduleUnit = 'MINUTES' | 'HOURS' | 'DAYS' | 'WEEKS' | 'MONTHS';

export interface Schedule {
  cron?: string | null;
  timezone?: string | null;
  every?: number | null;
  unit?: ScheduleUnit | null;
}

export function isValidTimezone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Problems with a schedule, as { path, message } (empty when valid or absent). */
export function validateSchedule(s: Schedule): { path: string; message: string }[] {
  const errors: { path: string; message: string }[] = [];
  const hasCron = !!s.cron;
  const hasEvery = s.every != null || s.unit != null;
  if (hasCron && hasEvery) errors.push({ path: 'schedule', message: 'give either a cron expression or every/unit, not both' });
  const tz = s.timezone ?? 'UTC';
  if (!isValidTimezone(tz)) errors.push({ path: 'schedule.timezone', message: `unknown time zone "${tz}" (use an IANA name like Europe/Paris)` });
  if (hasCron) {
    const fields = s.cron!.trim().split(/\s+/).length;
    if (fields < 5 || fields > 6) errors.push({ path: 'schedule.cron', message: `expected 5 fields (or 6 with seconds first), got ${fields}` });
    else {
      try {
        cronParser.parseExpression(s.cron!, { tz: isValidTimezone(tz) ? tz : 'UTC' }).next();
      } catch (err) {
        errors.push({ path: 'schedule.cron', message: `invalid cron expression: ${(err as Error).message}` });
      }
    }
  }
  if (hasEvery) {
    if (s.every == null || !Number.isInteger(s.every) || s.every < 1 || s.every > 10_000) {
      errors.push({ path: 'schedule.every', message: 'must be a whole number from 1 to 10000' });
    }
    if (!s.unit) errors.push({ path: 'schedule.unit', message: 'required with every' });
  }
  return errors;
}

function addUnits(d: Date, n: number, unit: ScheduleUnit): Date {
  const r = new Date(d.getTime());
  switch (unit) {
    case 'MINUTES':
      return new Date(r.getTime() + n * 60_000);
    case 'HOURS':
      return new Date(r.getTime() + n * 3_600_000);
    case 'DAYS':
      r.setUTCDate(r.getUTCDate() + n);
      return r;
    case 'WEEKS':
      r.setUTCDate(r.getUTCDate() + 7 * n);
      return r;
    case 'MONTHS':
      r.setUTCMonth(r.getUTCMonth() + n);
      return r;
  }
}

/**
 * The first fire strictly after `after`. Interval schedules fire at anchor + k·interval
 * (so they do not drift); null when there is no schedule.
 */
export function nextFire(s: Schedule, after: Date, anchor: Date): Date | null {
  if (s.cron) {
    return cronParser.parseExpression(s.cron, { currentDate: after, tz: s.timezone ?? 'UTC' }).next().toDate();
  }
  if (s.every && s.unit) {
    if (s.unit === 'MINUTES' || s.unit === 'HOURS') {
      const step = s.every * (s.unit === 'MINUTES' ? 60_000 : 3_600_000);
      const k = Math.floor((after.getTime() - anchor.getTime()) / step) + 1;
      return new Date(anchor.getTime() + Math.max(1, k) * step);
    }
    let t = anchor;
    let i = 0;
    while (t.getTime() <= after.getTime() && i++ < 1_000_000) t = addUnits(t, s.every, s.unit);
    return t;
  }
  return null;
}
