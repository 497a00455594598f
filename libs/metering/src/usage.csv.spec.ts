import { csvCell, usageToCsv } from './usage.service';

describe('usage CSV', () => {
  it.each([
    ['=HYPERLINK("http://evil.example","x")', `"'=HYPERLINK(""http://evil.example"",""x"")"`],
    ['+1', "'+1"],
    ['-cmd', "'-cmd"],
    ['@SUM(A1)', "'@SUM(A1)"],
    ['\tx', "'\tx"],
    ['\rx', `"'\rx"`],
    ['a\rb', '"a\rb"'],
    ['a\nb', '"a\nb"'],
    ['gpt-4o', 'gpt-4o'],
  ])('neutralises %j', (input, out) => {
    expect(csvCell(input)).toBe(out);
  });

  it('leaves numbers alone (ours), including negative ones', () => {
    expect(csvCell(-1.5)).toBe('-1.5');
    expect(csvCell(0)).toBe('0');
    expect(csvCell(null)).toBe('');
  });

  it('writes one neutralised row per report row', () => {
    const csv = usageToCsv([{ model: '=1+1', requests: 2, errors: 0, inputTokens: 1, outputTokens: 1, cachedTokens: 0, costUsd: 0.5 }]);
    expect(csv).toBe("model,requests,errors,inputTokens,outputTokens,cachedTokens,costUsd\n'=1+1,2,0,1,1,0,0.5\n");
  });
});
