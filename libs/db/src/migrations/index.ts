import { Initial1764028800000 } from './1764028800000-Initial';

/** Every migration, in order. Add new ones here; `synchronize` is never used. */
export const MIGRATIONS = [Initial1764028800000];
