import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { removeTempDirs, tempDir } from '../testing/temp-dirs.js';
import { dcxCommand } from './host-tools.js';
import { desktopEntry, mimePackage, register, registerPaths, unregister } from './desktop.js';
import { installService, launchdPlist, systemdUnit, uninstallService, unitPath, windowsRecipe } from './service.js';
import { AgentStateFile, processAlive } from './state.js';
import { DcxHome } from '../home.js';
import { parseNextAnswer } from './inbox-next.js';
import { iniSection } from '../../../test/support/ini.js';

afterAll(removeTempDirs);

const spec = {
  command: ['/usr/bin/node', '/opt/my dcx/main.js', 'agent', 'https://dcx.example', '--out', '/home/u/In box'],
  dcxHome: '/home/u/.config/dcx',
  server: 'https://dcx.example',
  out: '/home/u/In box',
};

describe('service files', () => {
  test('the systemd unit runs the agent with its DCX_HOME, quoting words with spaces', () => {
    const service = iniSection(systemdUnit(spec), 'Service');
    expect(service.ExecStart).toBe('/usr/bin/node "/opt/my dcx/main.js" agent https://dcx.example --out "/home/u/In box"');
    expect(service.Environment).toBe('DCX_HOME=/home/u/.config/dcx');
    expect(service.Restart).toBe('on-failure');
    expect(service.SuccessExitStatus).toBe('130 143');
    expect(iniSection(systemdUnit(spec), 'Install').WantedBy).toBe('default.target');
  });

  test('launchd plist and the Windows recipe name the same command', () => {
    const plist = launchdPlist({ ...spec, out: '/a&b' });
    expect(plist).toContain('<string>/opt/my dcx/main.js</string>');
    expect(plist).toContain('<key>DCX_HOME</key><string>/home/u/.config/dcx</string>');
    expect(windowsRecipe(spec)).toMatch(/schtasks \/Create .*\/TR ".*\\"\/opt\/my dcx\/main\.js\\" agent/);
  });

  test('install --no-enable writes the unit under XDG_CONFIG_HOME and runs nothing; uninstall removes it', async () => {
    const env = { XDG_CONFIG_HOME: await tempDir(), PATH: '' };
    const report = await installService(spec, false, env);
    expect(report.unitPath).toBe(join(env.XDG_CONFIG_HOME, 'systemd', 'user', 'dcx-agent.service'));
    expect(await readFile(unitPath(env), 'utf8')).toBe(systemdUnit(spec));
    expect(report.lines.join('\n')).toMatch(/not enabled \(--no-enable\)/);
    // systemctl cannot be found on an empty PATH: said so, not failed.
    const enabled = await installService(spec, true, env);
    expect(enabled.lines[1]).toBe('skipped: systemctl --user daemon-reload (systemctl is not installed)');
    const removed = await uninstallService(false, env);
    expect(removed.lines).toEqual([`removed the systemd user unit ${unitPath(env)}`]);
    await expect(readFile(unitPath(env))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('dcxCommand: node and the script, or the single executable alone', () => {
    expect(dcxCommand(['/usr/bin/node', '/x/dist/src/client/main.js'], '/usr/bin/node')).toEqual([
      '/usr/bin/node',
      '/x/dist/src/client/main.js',
    ]);
    expect(dcxCommand(['/usr/local/bin/dcx', 'agent'], '/usr/local/bin/dcx')).toEqual(['/usr/local/bin/dcx']);
  });
});

describe('desktop registration', () => {
  test('the desktop entry opens a bundle with `dcx open --out DIR %f` for both media types', () => {
    const entry = iniSection(desktopEntry(['/usr/bin/node', '/opt/dcx/main.js'], '/home/u/My Downloads'), 'Desktop Entry');
    expect(entry).toMatchObject({ Type: 'Application', Name: 'DCX', NoDisplay: 'true' });
    expect(entry.Exec).toBe('/usr/bin/node /opt/dcx/main.js open --out "/home/u/My Downloads" %f');
    expect(entry.MimeType).toBe('application/vnd.dcx.bundle+zip;application/vnd.dcx.plugin;');
  });

  test('the MIME package: both types, their globs, a bundle is a kind of ZIP', () => {
    const xml = mimePackage();
    expect(xml).toContain('<mime-type type="application/vnd.dcx.bundle+zip">');
    expect(xml).toContain('<sub-class-of type="application/zip"/>');
    expect(xml).toContain('<glob pattern="*.dcx" weight="60"/>');
    expect(xml).toContain('<glob pattern="*.dcxp" weight="60"/>');
  });

  test('register writes under XDG_DATA_HOME and says which tools it skipped; unregister removes both files', async () => {
    const env = { XDG_DATA_HOME: await tempDir(), PATH: '' };
    const lines = await register(['/bin/dcx'], '/tmp/out', env);
    const paths = registerPaths(env);
    expect(paths.desktopPath).toBe(join(env.XDG_DATA_HOME, 'applications', 'dcx.desktop'));
    expect(await readFile(paths.mimePath, 'utf8')).toBe(mimePackage());
    expect(lines).toContain(`skipped: update-mime-database ${join(env.XDG_DATA_HOME, 'mime')} (update-mime-database is not installed)`);
    expect(lines.at(-1)).toMatch(
      /^skipped: xdg-mime default dcx\.desktop application\/vnd\.dcx\.bundle\+zip application\/vnd\.dcx\.plugin/,
    );
    await unregister(env);
    await expect(readFile(paths.desktopPath)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('agent.json and the next answer', () => {
  test('written whole, read back; a live and a dead pid', async () => {
    const file = new AgentStateFile(new DcxHome(await tempDir()));
    expect(await file.read()).toBeNull();
    const state = {
      pid: process.pid,
      server: 'http://x',
      out: '/o',
      startedAt: 'now',
      lastContactAt: null,
      connected: true,
      lastDelivery: null,
    };
    await file.write(state);
    expect(await file.read()).toEqual(state);
    expect(processAlive(process.pid)).toBe(true);
    expect(processAlive(2 ** 22 + 12345)).toBe(false);
  });

  test('parseNextAnswer takes the contract shape and refuses anything else', () => {
    const item = { deliveryId: 'd', name: 'a.pdf', size: 1, bundleUrl: '/api/inbox/d/bundle', leaseExpiresAt: 'x' };
    const parsed = parseNextAnswer({ acked: { deliveryId: 'p', status: 'accepted', answer: 'AAE=' }, next: item, waiting: 2 }, 'here');
    expect(parsed.acked).toEqual({ deliveryId: 'p', status: 'accepted', answer: Buffer.from([0, 1]) });
    expect(parsed.next).toMatchObject(item);
    expect(parseNextAnswer({ acked: null, next: null, waiting: 0 }, 'here')).toEqual({ acked: null, next: null, waiting: 0 });
    expect(() => parseNextAnswer({ next: null, waiting: 0 }, 'here')).toThrow(/did not answer with \{acked, next, waiting\}/);
    expect(() => parseNextAnswer({ acked: null, next: { name: 'x' }, waiting: 0 }, 'here')).toThrow();
  });
});
