import { Initial1764028800000 } from './1764028800000-Initial';
import { AccessControl1795570800000 } from './1795570800000-AccessControl';
import { ClientRequestId1795573700000 } from './1795573700000-ClientRequestId';
import { CatalogPrices1796083316498 } from './1796083316498-CatalogPrices';
import { SessionId1796094102000 } from './1796094102000-SessionId';

/** Every migration, in order. Add new ones here; `synchronize` is never used. */
export const MIGRATIONS = [Initial1764028800000, AccessControl1795570800000, ClientRequestId1795573700000, CatalogPrices1796083316498, SessionId1796094102000];
