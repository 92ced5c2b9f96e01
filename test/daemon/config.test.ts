/**
 * The daemon's configuration: the minimal example works as written, every mistake names its path
 * in the file, and relative paths mean the same wherever the daemon is started from.
 */
import { DEFAULT_TEMPLATE, parseConfig, targetOptions } from '../../src/daemon/config';
import { recordingDir } from '../../src/daemon/store';
import { UsageError } from '../../src/errors';
import { thrown } from '../helpers/thrown';

const MINIMAL = `
storage:
  root: /var/lib/deskrec          # recordings go under it
api:
  listen: 127.0.0.1:7480
  token-file: /etc/deskrec/token  # bearer token, first line
targets:
  - name: vm1
    url: vnc://127.0.0.1:1
    password-file: /etc/deskrec/vm1.pw   # or password-env: NAME
    mode: always
`;

function problem(text: string): string {
  const err = thrown(UsageError, () => parseConfig(text, '/etc/deskrec', 'deskrec.yaml'));
  expect(err.code).toBe('CONFIG_INVALID');
  return err.message;
}

test('the minimal configuration of the issue parses, with the documented defaults', () => {
  const c = parseConfig(MINIMAL, '/etc/deskrec');
  expect(c.storage).toEqual({ root: '/var/lib/deskrec', template: DEFAULT_TEMPLATE, 'min-free': 1024 ** 3 });
  expect(c.api.listen).toEqual({ host: '127.0.0.1', port: 7480 });
  expect(c.api['token-file']).toBe('/etc/deskrec/token');
  expect(c.targets).toHaveLength(1);
  expect(c.targets[0]).toMatchObject({ name: 'vm1', url: 'vnc://127.0.0.1:1', 'password-file': '/etc/deskrec/vm1.pw', mode: 'always' });
  expect(c.metrics).toBe(true);
  expect(c.reconnect).toEqual({ 'min-delay': 0.5, 'max-delay': 30 });
});

test('JSON is read too, relative paths are the config file\'s, record options sit on the target beside defaults', () => {
  const c = parseConfig(JSON.stringify({
    storage: { root: 'rec', 'min-free': '2GiB' },
    api: { 'token-file': 'token' },
    rotation: { minutes: 60, megabytes: 512 },
    retention: { 'max-age': '30d', 'max-bytes': '500GB', 'max-bytes-per-target': 1000 },
    defaults: { qp: 20, format: 'mp4' },
    targets: [{ name: 'a', url: 'spice://h:5900', 'password-env': 'A_PW', 'fps-max': 15, format: 'mp4+png', 'tls-ca': 'ca.pem', mode: 'on-demand' }],
  }), '/srv/conf');
  expect(c.storage.root).toBe('/srv/conf/rec');
  expect(c.storage['min-free']).toBe(2 * 1024 ** 3);
  expect(c.api['token-file']).toBe('/srv/conf/token');
  expect(c.retention).toEqual({ 'max-age': 30 * 86400, 'max-bytes': 500e9, 'max-bytes-per-target': 1000 });
  const t = c.targets[0];
  if (t === undefined) throw new Error('no target');
  expect(t['tls-ca']).toBe('/srv/conf/ca.pem');
  expect(targetOptions(c, t)).toEqual({ qp: 20, format: 'mp4+png', 'fps-max': 15, 'tls-ca': '/srv/conf/ca.pem' });
});

test.each([
  ['an unknown scheme', `storage: {root: /r}\napi: {token-file: /t}\ntargets:\n  - {name: a, url: 'vnc://h:1'}\n  - {name: b, url: 'vnc://h:2'}\n  - {name: c, url: 'vcn://h:3'}\n`,
    "targets[2].url: unknown scheme 'vcn'"],
  ['a password in the URL', 'storage: {root: /r}\napi: {token-file: /t}\ntargets: [{name: a, url: "vnc://u:secret@h:1"}]\n', 'targets[0].url: a password in the URL'],
  ['a duplicate target', 'storage: {root: /r}\napi: {token-file: /t}\ntargets: [{name: a, url: "vnc://h:1"}, {name: a, url: "vnc://h:2"}]\n', "targets[1].name: duplicate target name 'a'"],
  ['an unknown key', 'storage: {root: /r}\napi: {token-file: /t}\ntargets: [{name: a, url: "vnc://h:1", fps: 5}]\n', 'targets[0]: Unrecognized key: "fps"'],
  ['an option out of range', 'storage: {root: /r}\napi: {token-file: /t}\ntargets: [{name: a, url: "vnc://h:1", qp: 60}]\n', 'targets[0].qp:'],
  ['qp and bitrate together', 'storage: {root: /r}\napi: {token-file: /t}\ntargets: [{name: a, url: "vnc://h:1", qp: 20, bitrate: 100000}]\n', 'targets[0].bitrate: qp and bitrate exclude each other'],
  ['both password sources', 'storage: {root: /r}\napi: {token-file: /t}\ntargets: [{name: a, url: "vnc://h:1", password-file: /p, password-env: P}]\n', 'targets[0].password-env: give password-file or password-env'],
  ['a bad size', 'storage: {root: /r, min-free: lots}\napi: {token-file: /t}\n', "storage.min-free: not a size: 'lots'"],
  ['a bad duration', 'storage: {root: /r}\napi: {token-file: /t}\nretention: {max-age: 3 weeks}\n', "retention.max-age: not a duration: '3 weeks'"],
  ['a template without {id}', 'storage: {root: /r, template: "{target}/x"}\napi: {token-file: /t}\n', 'storage.template: must contain {id}'],
  ['a template leaving the root', 'storage: {root: /r, template: "../{id}"}\napi: {token-file: /t}\n', 'storage.template: must stay under the storage root'],
  ['no token file', 'storage: {root: /r}\napi: {listen: "127.0.0.1:1"}\n', 'api.token-file:'],
  ['a bad listen address', 'storage: {root: /r}\napi: {listen: "localhost", token-file: /t}\n', "api.listen: must be HOST:PORT"],
  ['a bad target name', 'storage: {root: /r}\napi: {token-file: /t}\ntargets: [{name: "../x", url: "vnc://h:1"}]\n', 'targets[0].name: must be 1-64 letters'],
  ['not YAML at all', 'storage: [unclosed\n', 'not valid YAML or JSON'],
])('%s is refused with its path', (_what, text, expected) => {
  expect(problem(text)).toContain(expected);
});

test('every problem is listed, not only the first', () => {
  const msg = problem('storage: {root: /r}\napi: {token-file: /t}\ntargets: [{name: a, url: "vcn://h"}, {name: b, url: "vnc://h", mode: sometimes}]\n');
  expect(msg).toContain("targets[0].url: unknown scheme 'vcn'");
  expect(msg).toContain('targets[1].mode:');
});

test('directory names follow the template, in UTC, and API recordings go under "api"', () => {
  const start = new Date(Date.UTC(2026, 11, 6, 1, 2, 3));
  expect(recordingDir(DEFAULT_TEMPLATE, { target: 'vm1', id: 'abcdefghijkl', start })).toBe('vm1/20261206-010203-abcdefghijkl');
  expect(recordingDir('{start:YYYY}/{start:MM}/{target}-{id}', { target: null, id: 'abcdefghijkl', start })).toBe('2026/12/api-abcdefghijkl');
});
