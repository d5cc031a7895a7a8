'''systemd1 mock for the ndefender system-controller tests.

The stock `systemd` template of python-dbusmock lacks RestartUnit, Subscribe,
LoadUnit, SubState, the Service interface and the timestamps. This one has:
Manager methods LoadUnit, GetUnit, RestartUnit, Subscribe; Unit properties Id,
LoadState, ActiveState, SubState, ActiveEnterTimestamp; Service properties
NRestarts, Result; the signals JobNew, JobRemoved and PropertiesChanged, emitted
only after Subscribe (as systemd does); and the controls AddUnit, SetUnitState
and SetRestartOutcome. Calls are logged by dbusmock (GetMethodCalls).
'''

import time

import dbus
from gi.repository import GLib

from dbusmock import mockobject

BUS_NAME = 'org.freedesktop.systemd1'
MAIN_OBJ = '/org/freedesktop/systemd1'
MAIN_IFACE = 'org.freedesktop.systemd1.Manager'
UNIT_IFACE = 'org.freedesktop.systemd1.Unit'
SERVICE_IFACE = 'org.freedesktop.systemd1.Service'
MOCK_IFACE = 'org.ndefender.Systemd1Mock'
SYSTEM_BUS = True


def escape(name):
    '''systemd's object path escaping of a unit name.'''
    out = ''
    for i, ch in enumerate(name):
        if ch.isascii() and (ch.isalnum() and not (i == 0 and ch.isdigit())):
            out += ch
        else:
            out += '_%02x' % ord(ch)
    return out


def unit_path(name):
    return MAIN_OBJ + '/unit/' + escape(name)


def now_us():
    return dbus.UInt64(int(time.time() * 1e6))


def load(mock, _parameters):
    mock.subscribed = False
    mock.outcomes = {}
    mock.next_job = 1


def _manager():
    return mockobject.objects[MAIN_OBJ]


def _emit_changed(obj, iface, changed):
    if not _manager().subscribed:
        return
    obj.EmitSignal(dbus.PROPERTIES_IFACE, 'PropertiesChanged', 'sa{sv}as', [iface, changed, []])


def _add(name, load_state, active, sub):
    path = unit_path(name)
    mgr = _manager()
    mgr.AddObject(path, UNIT_IFACE, {
        'Id': dbus.String(name),
        'LoadState': dbus.String(load_state),
        'ActiveState': dbus.String(active),
        'SubState': dbus.String(sub),
        'ActiveEnterTimestamp': now_us() if active == 'active' else dbus.UInt64(0),
    }, [])
    if name.endswith('.service'):
        mockobject.objects[path].AddProperties(SERVICE_IFACE, {
            'NRestarts': dbus.UInt32(0),
            'Result': dbus.String('success'),
        })
    return path


@dbus.service.method(MAIN_IFACE, in_signature='', out_signature='')
def Subscribe(self):
    self.subscribed = True


@dbus.service.method(MAIN_IFACE, in_signature='s', out_signature='o')
def LoadUnit(self, name):
    path = unit_path(name)
    if path not in mockobject.objects:
        # systemd loads an unknown name as a not-found unit rather than failing
        _add(name, 'not-found', 'inactive', 'dead')
    return dbus.ObjectPath(path)


@dbus.service.method(MAIN_IFACE, in_signature='s', out_signature='o')
def GetUnit(self, name):
    path = unit_path(name)
    obj = mockobject.objects.get(path)
    if obj is None or obj.props[UNIT_IFACE]['LoadState'] == 'not-found':
        raise dbus.exceptions.DBusException(f'Unit {name} not loaded.', name='org.freedesktop.systemd1.NoSuchUnit')
    return dbus.ObjectPath(path)


@dbus.service.method(MAIN_IFACE, in_signature='ss', out_signature='o')
def RestartUnit(self, name, _mode):
    path = unit_path(name)
    obj = mockobject.objects.get(path)
    if obj is None or obj.props[UNIT_IFACE]['LoadState'] == 'not-found':
        raise dbus.exceptions.DBusException(f'Unit {name} not found.', name='org.freedesktop.systemd1.NoSuchUnit')
    job_id = self.next_job
    self.next_job += 1
    job = dbus.ObjectPath(f'{MAIN_OBJ}/job/{job_id}')
    result, delay_ms = self.outcomes.get(name, ('done', 100))
    if self.subscribed:
        self.EmitSignal(MAIN_IFACE, 'JobNew', 'uos', [dbus.UInt32(job_id), job, name])

    def finish():
        if result == 'done':
            _set_state(name, 'active', 'running', 'success')
        else:
            _set_state(name, 'failed', 'failed', 'exit-code')
        if self.subscribed:
            self.EmitSignal(MAIN_IFACE, 'JobRemoved', 'uoss', [dbus.UInt32(job_id), job, name, result])
        return False

    GLib.timeout_add(int(delay_ms), finish)
    return job


def _set_state(name, active, sub, result):
    obj = mockobject.objects[unit_path(name)]
    props = obj.props[UNIT_IFACE]
    props['ActiveState'] = dbus.String(active)
    props['SubState'] = dbus.String(sub)
    changed = {'ActiveState': dbus.String(active, variant_level=1), 'SubState': dbus.String(sub, variant_level=1)}
    if active == 'active':
        props['ActiveEnterTimestamp'] = now_us()
        changed['ActiveEnterTimestamp'] = dbus.UInt64(props['ActiveEnterTimestamp'], variant_level=1)
    _emit_changed(obj, UNIT_IFACE, changed)
    if SERVICE_IFACE in obj.props:
        obj.props[SERVICE_IFACE]['Result'] = dbus.String(result)
        _emit_changed(obj, SERVICE_IFACE, {'Result': dbus.String(result, variant_level=1)})


@dbus.service.method(MOCK_IFACE, in_signature='sss', out_signature='o')
def AddUnit(self, name, active, sub):
    return dbus.ObjectPath(_add(name, 'loaded', active, sub))


@dbus.service.method(MOCK_IFACE, in_signature='ssss', out_signature='')
def SetUnitState(self, name, active, sub, result):
    _set_state(name, active, sub, result)


@dbus.service.method(MOCK_IFACE, in_signature='ssu', out_signature='')
def SetRestartOutcome(self, name, result, delay_ms):
    self.outcomes[name] = (result, delay_ms)


@dbus.service.method(MOCK_IFACE, in_signature='', out_signature='b')
def IsSubscribed(self):
    return self.subscribed
