// TASKGATE_HTTP_ALLOW_LIST is read at start by the parser the SSRF guard matches with: an
// unreadable entry (a CIDR with a bad prefix or network) stops the start with a ConfigError naming
// it, instead of a RangeError on every private target at run time or an entry that never matches.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { ConfigError } from '../../src/config/parse.js';
import { assertPublicUrl } from '../../src/executors/ssrf.js';

const load = (value: string) => loadConfig({}, { TASKGATE_HTTP_ALLOW_LIST: value });

describe('TASKGATE_HTTP_ALLOW_LIST at start', () => {
  it.each(['10.0.0.0/99', '127.0.0.0/abc', '::1/200', '127.0.0/8', '10.0.0.0/', '/8', '10.0.0.0/8/8', '10.0.0.0/-1', 'http://internal', 'internal:8080', '[::1]'])(
    'refuses %s with a ConfigError naming the setting and the entry',
    (entry) => {
      expect(() => load(`localhost, ${entry}`)).toThrow(ConfigError);
      expect(() => load(`localhost, ${entry}`)).toThrow(`TASKGATE_HTTP_ALLOW_LIST: ${JSON.stringify(entry)}`);
    },
  );

  it('accepts host names, addresses and CIDRs of either family, and unset', () => {
    expect(load(' localhost, my_service.internal ,10.1.2.3, 10.0.0.0/8, 0.0.0.0/0, fd00::/8, ::1, ::/128, fe80::/10').httpAllowList)
      .toEqual(['localhost', 'my_service.internal', '10.1.2.3', '10.0.0.0/8', '0.0.0.0/0', 'fd00::/8', '::1', '::/128', 'fe80::/10']);
    expect(load('').httpAllowList).toEqual([]);
  });

  it('matches at run time what it accepted at start (CIDR of either family)', async () => {
    const allow = load('10.0.0.0/16, fd00::/8').httpAllowList;
    await expect(assertPublicUrl(new URL('http://10.0.2.3/'), allow)).resolves.toBeUndefined();
    await expect(assertPublicUrl(new URL('http://[fd00::5]/'), allow)).resolves.toBeUndefined();
    await expect(assertPublicUrl(new URL('http://10.1.2.3/'), allow)).rejects.toThrow(/refusing to call 10.1.2.3/);
  });

  it('matches host names without case and without a final dot', async () => {
    const allow = load('Localhost., My-Service.internal').httpAllowList;
    await expect(assertPublicUrl(new URL('http://localhost:1/'), allow)).resolves.toBeUndefined();
  });

  it('a list that skipped the start check cannot make the guard throw anything but its refusal', async () => {
    await expect(assertPublicUrl(new URL('http://10.0.0.1/'), ['10.0.0.0/99', '::1/200', '127.0.0.0/abc'])).rejects.toThrow(/refusing to call 10.0.0.1/);
  });
});
