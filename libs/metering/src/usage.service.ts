import { Injectable } from '@nestjs/common';
import { UsageQuery, UsageReportRow, UsageRepository, UsageScope } from './usage.repository';

/** Usage reports for the admin API, straight from the ledger (indexed by tenant and time). */
@Injectable()
export class UsageService {
  constructor(private readonly usage: UsageRepository) {}

  report(scope: UsageScope, q: UsageQuery): Promise<UsageReportRow[]> {
    if (scope !== 'all' && !scope?.tenantId) throw new Error('UsageService.report: a tenant scope needs a tenantId');
    return this.usage.report(scope, q);
  }
}

/**
 * A CSV cell a spreadsheet would not run. Text that starts like a formula (`= + - @`, or a tab or CR that
 * some spreadsheets skip before one) gets a leading `'` (OWASP's advice: shown, never evaluated), and a cell
 * with a quote, comma, LF or CR is quoted (RFC 4180). Numbers are ours, never neutralised.
 */
export function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- cells are scalars, dates or JSON columns; any value gets a cell
  let s = String(v);
  if (typeof v !== 'number' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function usageToCsv(rows: UsageReportRow[]): string {
  const cols = [
    'day',
    'tenantId',
    'keyId',
    'model',
    'providerId',
    'sessionId',
    'requests',
    'errors',
    'inputTokens',
    'outputTokens',
    'cachedTokens',
    'costUsd',
  ].filter((c) => rows.length === 0 || c in rows[0]) as (keyof UsageReportRow)[];
  return [cols.join(','), ...rows.map((r) => cols.map((c) => csvCell(r[c])).join(','))].join('\n') + '\n';
}
