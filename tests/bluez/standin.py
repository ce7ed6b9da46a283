#!/usr/bin/python3
"""A BlueZ stand-in: two BlueZ daemons (the speaker's and the laptop's) joined by a simulated
LE radio link, speaking BlueZ's documented D-Bus API to the real bluer peripheral and the real
btleplug central.

Why two buses: a speaker and a laptop are two machines, each with its own bluetoothd and its
own `hci0`. One process owns `org.bluez` on both private buses (each a `dbus-daemon` the test
started; never the host's), so the "air" between them is in-process and deterministic.

Every behaviour cites the BlueZ document it follows (doc/org.bluez.*.rst in the BlueZ tree);
where the documents are silent it follows BlueZ's source, cited as src/<file>, and says so.

Events for the test go to stdout, one line each, flushed:
  STANDIN_READY, ADV_REGISTERED name=… uuids=…, ADV_UNREGISTERED reason=…, APP_REGISTERED …,
  CONNECTED mtu=…, DISCONNECTED by=central|peripheral|fault|timeout, INDICATION n=… len=…,
  WRITE n=… len=…, CONNECTED_FALSE (the laptop's Connected turned false after
  --connected-lag-ms), READ_STALLED / SUBSCRIBE_STALLED (--stall-reads / --stall-subscribe held
  a read or a StartNotify back), NOTIFY_CLIENT_GONE why=left-bus (a laptop client that had
  subscribed left its bus: its notify session dropped, as BlueZ does), VIOLATION what=… (the
  programs broke an ATT/BlueZ rule; tests assert none).

Runs with Debian's python3-dbus and python3-gi (installed by scripts/lib/deps.sh).
"""

import argparse
import sys

import dbus
import dbus.lowlevel
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

BLUEZ = "org.bluez"
ADAPTER = "org.bluez.Adapter1"
DEVICE = "org.bluez.Device1"
GATT_MANAGER = "org.bluez.GattManager1"
ADV_MANAGER = "org.bluez.LEAdvertisingManager1"
ADVERTISEMENT = "org.bluez.LEAdvertisement1"
SERVICE = "org.bluez.GattService1"
CHAR = "org.bluez.GattCharacteristic1"
DESC = "org.bluez.GattDescriptor1"
PROPS = "org.freedesktop.DBus.Properties"
OM = "org.freedesktop.DBus.ObjectManager"

# ATT limits (Core spec Vol 3 Part F; BlueZ src/shared/att-types.h: BT_ATT_DEFAULT_LE_MTU 23,
# BT_ATT_MAX_LE_MTU 517; src/shared/gatt-server.c and gatt-database.c: values at most 512).
MIN_MTU = 23
MAX_MTU = 517
MAX_ATTR = 512
# An ATT transaction not answered in 30 s kills the bearer (Core spec Vol 3 Part F 3.3.3; BlueZ
# src/shared/att.c ATT_TIMEOUT_INTERVAL).
ATT_TIMEOUT_S = 30


def emit(line):
    print(line, flush=True)


def violation(what):
    emit("VIOLATION what=%s" % what)


class BluezError(dbus.DBusException):
    """An org.bluez.Error.* reply (names from the doc/org.bluez.*.rst "Possible errors")."""

    def __init__(self, name, message=""):
        super().__init__(message)
        self._dbus_error_name = "org.bluez.Error." + name


def path_for(address):
    return "dev_" + address.replace(":", "_")


# --- ATT error mapping -------------------------------------------------------------------------
# An application's D-Bus error becomes an ATT error code on the speaker (src/gatt-database.c
# dbus_error_to_att_ecode), and the ATT code becomes the central's D-Bus error on the laptop
# (src/gatt-client.c create_gatt_dbus_error).


def app_error_to_att(name, message, is_read):
    table = {
        "org.bluez.Error.NotSupported": 0x06,
        "org.bluez.Error.NotAuthorized": 0x08,
        "org.bluez.Error.InvalidValueLength": 0x0D,
        "org.bluez.Error.InvalidOffset": 0x07,
        "org.bluez.Error.InProgress": 0xFE,
        "org.bluez.Error.ImproperlyConfigured": 0xFD,
    }
    if name == "org.bluez.Error.Failed":
        try:
            code = int(message, 0)
            if 0x80 <= code <= 0x9F:
                return code
        except (TypeError, ValueError):
            pass
        return 0x80
    if name == "org.bluez.Error.NotPermitted":
        return 0x02 if is_read else 0x03
    return table.get(name, 0x0E)


def att_to_central_error(code):
    if code in (0x02, 0x03):
        return BluezError("NotPermitted", "Not permitted")
    if code in (0x05, 0x0C, 0x0F):
        return BluezError("NotPermitted", "Not paired")
    if code in (0x07, 0x0D):
        return BluezError("InvalidArguments", "Invalid arguments")
    if code == 0x08:
        return BluezError("NotAuthorized", "Not authorized")
    if code == 0x06:
        return BluezError("NotSupported", "Not supported")
    return BluezError("Failed", "Operation failed with ATT error: 0x%02x" % code)


# --- Generic exported object ---------------------------------------------------------------------


class Obj(dbus.service.Object):
    """An object with Properties (Get/GetAll/Set + PropertiesChanged) for several interfaces."""

    def __init__(self, daemon, path):
        self.daemon = daemon
        self.path = path
        self.props = {}  # iface -> {name: dbus value}
        self.setters = {}  # (iface, name) -> fn(value) raising BluezError
        super().__init__(daemon.bus, path)

    def set_prop(self, iface, name, value, signal=True):
        self.props.setdefault(iface, {})[name] = value
        if signal:
            self.PropertiesChanged(iface, dbus.Dictionary({name: value}, signature="sv"),
                                   dbus.Array([], signature="s"))

    @dbus.service.method(PROPS, in_signature="ss", out_signature="v")
    def Get(self, iface, name):
        try:
            return self.props[iface][name]
        except KeyError:
            raise dbus.exceptions.DBusException(
                "No such property '%s'" % name,
                name="org.freedesktop.DBus.Error.InvalidArgs") from None

    @dbus.service.method(PROPS, in_signature="s", out_signature="a{sv}")
    def GetAll(self, iface):
        return dbus.Dictionary(self.props.get(iface, {}), signature="sv")

    @dbus.service.method(PROPS, in_signature="ssv")
    def Set(self, iface, name, value):
        setter = self.setters.get((iface, name))
        if setter is None:
            raise dbus.exceptions.DBusException(
                "Property '%s' is not writable" % name,
                name="org.freedesktop.DBus.Error.PropertyReadOnly")
        setter(value)

    @dbus.service.signal(PROPS, signature="sa{sv}as")
    def PropertiesChanged(self, iface, changed, invalidated):
        pass


class Root(dbus.service.Object):
    """`/`: the ObjectManager (every bluetoothd exports it; bluer and bluez-async enumerate
    adapters and devices through GetManagedObjects)."""

    def __init__(self, daemon):
        self.daemon = daemon
        super().__init__(daemon.bus, "/")

    @dbus.service.method(OM, out_signature="a{oa{sa{sv}}}")
    def GetManagedObjects(self):
        out = {}
        for path, obj in self.daemon.objects.items():
            out[dbus.ObjectPath(path)] = dbus.Dictionary(
                {i: dbus.Dictionary(p, signature="sv") for i, p in obj.props.items()},
                signature="sa{sv}")
        return dbus.Dictionary(out, signature="oa{sa{sv}}")

    @dbus.service.signal(OM, signature="oa{sa{sv}}")
    def InterfacesAdded(self, path, ifaces):
        pass

    @dbus.service.signal(OM, signature="oas")
    def InterfacesRemoved(self, path, ifaces):
        pass


class Daemon:
    """One bluetoothd: a bus connection owning org.bluez, its object tree, its adapter."""

    def __init__(self, label, address):
        self.label = label
        self.bus = dbus.bus.BusConnection(address)
        self.objects = {}
        self.root = Root(self)
        self.adapter = None
        # Owning the name last: once a client sees org.bluez, the tree is there.
        self.name = dbus.service.BusName(BLUEZ, self.bus, do_not_queue=True)

    def add(self, obj, signal=True):
        self.objects[obj.path] = obj
        if signal:
            self.root.InterfacesAdded(obj.path, dbus.Dictionary(
                {i: dbus.Dictionary(p, signature="sv") for i, p in obj.props.items()},
                signature="sa{sv}"))

    def remove(self, path):
        obj = self.objects.pop(path, None)
        if obj is None:
            return
        self.root.InterfacesRemoved(path, dbus.Array(list(obj.props.keys()), signature="s"))
        obj.remove_from_connection()


# --- Adapter -------------------------------------------------------------------------------------


class Adapter(Obj):
    """`/org/bluez/hci0` with org.bluez.Adapter1 (doc/org.bluez.Adapter.rst), GattManager1
    (doc/org.bluez.GattManager.rst) and LEAdvertisingManager1
    (doc/org.bluez.LEAdvertisingManager.rst)."""

    def __init__(self, daemon, address, powered, rfkill_blocked, air):
        super().__init__(daemon, "/org/bluez/hci0")
        self.air = air
        self.rfkill_blocked = rfkill_blocked
        self.discovery_clients = set()
        self.filter_uuids = []
        self.apps = {}  # (sender, path) -> App
        self.advs = {}  # (sender, path) -> Adv
        # Properties bluez-async requires (Address, AddressType, Modalias, Name, Alias, Powered,
        # Discovering) and those bluer reads; types from doc/org.bluez.Adapter.rst.
        self.props[ADAPTER] = {
            "Address": dbus.String(address),
            "AddressType": dbus.String("public"),
            "Name": dbus.String("standin-" + daemon.label),
            "Alias": dbus.String("standin-" + daemon.label),
            "Class": dbus.UInt32(0),
            "Powered": dbus.Boolean(powered),
            "PowerState": dbus.String("on" if powered else
                                      ("off-blocked" if rfkill_blocked else "off")),
            "Discoverable": dbus.Boolean(False),
            "DiscoverableTimeout": dbus.UInt32(180),
            "Pairable": dbus.Boolean(True),
            "PairableTimeout": dbus.UInt32(0),
            "Discovering": dbus.Boolean(False),
            "UUIDs": dbus.Array([], signature="s"),
            "Modalias": dbus.String("usb:v1D6Bp0246d0550"),
            "Roles": dbus.Array(["central", "peripheral"], signature="s"),
        }
        self.props[GATT_MANAGER] = {}
        # doc/org.bluez.LEAdvertisingManager.rst: ActiveInstances, SupportedInstances,
        # SupportedIncludes (bluer treats all three as required).
        self.props[ADV_MANAGER] = {
            "ActiveInstances": dbus.Byte(0),
            "SupportedInstances": dbus.Byte(5),
            "SupportedIncludes": dbus.Array(["tx-power", "appearance", "local-name"],
                                            signature="s"),
        }
        self.setters[(ADAPTER, "Powered")] = self._set_powered
        self.setters[(ADAPTER, "Alias")] = lambda v: self.set_prop(ADAPTER, "Alias", v)
        self.setters[(ADAPTER, "Pairable")] = lambda v: self.set_prop(ADAPTER, "Pairable", v)
        self.setters[(ADAPTER, "Discoverable")] = \
            lambda v: self.set_prop(ADAPTER, "Discoverable", v)

    @property
    def powered(self):
        return bool(self.props[ADAPTER]["Powered"])

    def _set_powered(self, value):
        # doc/org.bluez.Adapter.rst, Powered: "Switch an adapter on or off"; an rfkill-blocked
        # adapter can't be switched on (PowerState "off-blocked"; src/adapter.c answers
        # org.bluez.Error.Blocked "Blocked through rfkill").
        if value and self.rfkill_blocked:
            raise BluezError("Blocked", "Blocked through rfkill")
        self.set_prop(ADAPTER, "Powered", dbus.Boolean(bool(value)))
        self.set_prop(ADAPTER, "PowerState", dbus.String("on" if value else "off"))
        self.air.changed()

    # Discovery (doc/org.bluez.Adapter.rst StartDiscovery / StopDiscovery / SetDiscoveryFilter).

    @dbus.service.method(ADAPTER, in_signature="a{sv}", sender_keyword="sender")
    def SetDiscoveryFilter(self, flt, sender=None):
        known = {"UUIDs", "RSSI", "Pathloss", "Transport", "DuplicateData", "Discoverable",
                 "Pattern"}
        for key in flt:
            if key not in known:
                raise BluezError("InvalidArguments", "Invalid arguments in method call")
        transport = str(flt.get("Transport", "auto"))
        if transport not in ("auto", "bredr", "le"):
            raise BluezError("InvalidArguments", "Invalid arguments in method call")
        self.filter_uuids = [str(u).lower() for u in flt.get("UUIDs", [])]
        emit("DISCOVERY_FILTER uuids=%s transport=%s duplicate_data=%s" % (
            ",".join(self.filter_uuids) or "-", transport,
            str(bool(flt.get("DuplicateData", True))).lower()))

    @dbus.service.method(ADAPTER, sender_keyword="sender")
    def StartDiscovery(self, sender=None):
        if not self.powered:
            raise BluezError("NotReady", "Resource Not Ready")
        if sender in self.discovery_clients:
            raise BluezError("InProgress", "Operation already in progress")
        self.discovery_clients.add(sender)
        self.daemon.bus.watch_name_owner(sender, lambda owner, s=sender: (
            owner == "" and self._drop_discovery(s)))
        if not self.props[ADAPTER]["Discovering"]:
            self.set_prop(ADAPTER, "Discovering", dbus.Boolean(True))
        emit("DISCOVERY_STARTED")
        self.air.changed()

    @dbus.service.method(ADAPTER, sender_keyword="sender")
    def StopDiscovery(self, sender=None):
        if not self.powered:
            raise BluezError("NotReady", "Resource Not Ready")
        if sender not in self.discovery_clients:
            raise BluezError("Failed", "No discovery started")
        self._drop_discovery(sender)

    def _drop_discovery(self, sender):
        self.discovery_clients.discard(sender)
        if not self.discovery_clients and self.props[ADAPTER]["Discovering"]:
            self.set_prop(ADAPTER, "Discovering", dbus.Boolean(False))
            emit("DISCOVERY_STOPPED")

    @property
    def discovering(self):
        return bool(self.discovery_clients)

    @dbus.service.method(ADAPTER, in_signature="o")
    def RemoveDevice(self, path):
        if str(path) not in self.daemon.objects:
            raise BluezError("DoesNotExist", "Does Not Exist")
        self.air.remove_device(self.daemon, str(path))

    # What GattManager1 and LEAdvertisingManager1 share: a table of what applications registered,
    # by (sender, path). BlueZ refuses a second registration of the same object (AlreadyExists)
    # and the unregistration of one it does not have (DoesNotExist), and ends a registration when
    # its owner leaves the bus.

    def _new_key(self, registered, sender, path, err):
        """The key of a registration, or None once `err` has refused it as a second one."""
        key = (sender, str(path))
        if key in registered:
            err(BluezError("AlreadyExists", "Already Exists"))
            return None
        return key

    def _record(self, registered, key, build, drop, err):
        """Makes what an application registers (`build`) and records it under `key`; `drop`
        ends the registration when its owner leaves the bus. A BluezError from `build` refuses
        the registration through `err` (None)."""
        try:
            obj = build()
        except BluezError as e:
            err(e)
            return None
        registered[key] = obj
        self.daemon.bus.watch_name_owner(key[0], lambda owner: (
            owner == "" and drop(key, "owner-left")))
        return obj

    def _unregister(self, registered, sender, path, drop):
        """An application's own unregistration of what it registered at `path`."""
        key = (sender, str(path))
        if key not in registered:
            raise BluezError("DoesNotExist", "Does Not Exist")
        drop(key, "unregistered")

    # GattManager1 (doc/org.bluez.GattManager.rst).

    @dbus.service.method(GATT_MANAGER, in_signature="oa{sv}", sender_keyword="sender",
                         async_callbacks=("ok", "err"))
    def RegisterApplication(self, path, options, sender=None, ok=None, err=None):
        key = self._new_key(self.apps, sender, path, err)
        if key is None:
            return
        # "The application ... must implement org.freedesktop.DBus.ObjectManager"; BlueZ reads
        # the tree before it answers (src/gatt-database.c client_ready_cb).
        def got(objects):
            app = self._record(self.apps, key, lambda: App(sender, str(path), objects),
                               self._drop_app, err)
            if app is None:
                return
            # BlueZ allocates handles and writes them back (doc/org.bluez.GattCharacteristic.rst
            # "Handle [read-write, optional] (Server Only)"; src/gatt-database.c write_handle).
            for obj_path, iface, handle in app.handles():
                self.daemon.bus.call_async(
                    sender, obj_path, PROPS, "Set", "ssv", (iface, "Handle", dbus.UInt16(handle)),
                    None, lambda e, p=obj_path: emit("NOTE handle write to %s refused: %s" % (
                        p, e.get_dbus_name())))
            emit("APP_REGISTERED services=%d characteristics=%d flags=%s" % (
                len(app.services), len(app.chars),
                ";".join("%s:%s" % (c.uuid[:8], ",".join(c.flags)) for c in app.chars)))
            ok()
            self.air.changed()

        def failed(e):
            err(BluezError("Failed", "No object received"))

        self.daemon.bus.call_async(sender, path, OM, "GetManagedObjects", "", (), got, failed)

    @dbus.service.method(GATT_MANAGER, in_signature="o", sender_keyword="sender")
    def UnregisterApplication(self, path, sender=None):
        self._unregister(self.apps, sender, path, self._drop_app)

    def _drop_app(self, key, reason):
        if self.apps.pop(key, None) is not None:
            emit("APP_UNREGISTERED reason=%s" % reason)
            self.air.changed()

    @property
    def app(self):
        return next(iter(self.apps.values()), None)

    # LEAdvertisingManager1 (doc/org.bluez.LEAdvertisingManager.rst, doc/org.bluez.LEAdvertisement.rst).

    @dbus.service.method(ADV_MANAGER, in_signature="oa{sv}", sender_keyword="sender",
                         async_callbacks=("ok", "err"))
    def RegisterAdvertisement(self, path, options, sender=None, ok=None, err=None):
        key = self._new_key(self.advs, sender, path, err)
        if key is None:
            return
        if len(self.advs) >= int(self.props[ADV_MANAGER]["SupportedInstances"]):
            err(BluezError("NotPermitted", "Maximum advertisements reached"))
            return

        def got(props):
            adv = self._record(self.advs, key, lambda: Adv(props), self._drop_adv, err)
            if adv is None:
                return
            self.set_prop(ADV_MANAGER, "ActiveInstances", dbus.Byte(len(self.advs)))
            emit("ADV_REGISTERED name=%s uuids=%s type=%s" % (
                adv.local_name or "-", ",".join(adv.uuids) or "-", adv.type))
            ok()
            self.air.changed()

        def failed(e):
            err(BluezError("Failed", "Failed to parse advertisement: %s" % e.get_dbus_name()))

        self.daemon.bus.call_async(sender, path, PROPS, "GetAll", "s", (ADVERTISEMENT,), got,
                                   failed)

    @dbus.service.method(ADV_MANAGER, in_signature="o", sender_keyword="sender")
    def UnregisterAdvertisement(self, path, sender=None):
        # No Release here: "Release ... gets called when the service daemon removes the
        # Advertisement" (doc/org.bluez.LEAdvertisement.rst), not on an application's own
        # UnregisterAdvertisement.
        self._unregister(self.advs, sender, path, self._drop_adv)

    def _drop_adv(self, key, reason):
        if self.advs.pop(key, None) is not None:
            self.set_prop(ADV_MANAGER, "ActiveInstances", dbus.Byte(len(self.advs)))
            emit("ADV_UNREGISTERED reason=%s" % reason)
            self.air.changed()

    @property
    def adv(self):
        return next(iter(self.advs.values()), None) if self.powered else None


class Adv:
    """A registered advertisement, read from org.bluez.LEAdvertisement1
    (doc/org.bluez.LEAdvertisement.rst)."""

    def __init__(self, props):
        self.type = str(props.get("Type", ""))
        if self.type not in ("broadcast", "peripheral"):
            raise BluezError("InvalidArguments", "Invalid Type")
        self.uuids = [str(u).lower() for u in props.get("ServiceUUIDs", [])]
        self.local_name = str(props["LocalName"]) if "LocalName" in props else None
        self.manufacturer = props.get("ManufacturerData", {})
        self.service_data = props.get("ServiceData", {})
        # The advertising data must fit 31 bytes (Core spec Vol 3 Part C 11): flags (3) +
        # service UUID lists; the local name goes in the scan response when it does not fit
        # (src/advertising.c). InvalidLength per doc/org.bluez.LEAdvertisingManager.rst.
        size = 3
        for bits in (16, 32, 128):
            n = [u for u in self.uuids if uuid_bits(u) == bits]
            if n:
                size += 2 + len(n) * bits // 8
        for _, v in self.manufacturer.items():
            size += 4 + len(v)
        if size > 31:
            raise BluezError("InvalidLength", "Advertising data too long")
        if self.local_name is not None and len(self.local_name.encode()) > 29:
            raise BluezError("InvalidLength", "Local name too long for the scan response")


def uuid_bits(u):
    base = "-0000-1000-8000-00805f9b34fb"
    if u.endswith(base) and u.startswith("0000"):
        return 16
    if u.endswith(base):
        return 32
    return 128


class App:
    """A registered GATT application: the services, characteristics and descriptors found by
    walking its ObjectManager (doc/org.bluez.GattManager.rst "Application Hierarchy")."""

    def __init__(self, sender, path, objects):
        self.sender = sender
        self.path = path
        self.services = []
        self.chars = []
        by_service = {}
        for obj_path, ifaces in sorted(objects.items()):
            obj_path = str(obj_path)
            if not obj_path.startswith(path):
                continue
            if SERVICE in ifaces:
                p = ifaces[SERVICE]
                if "UUID" not in p:
                    raise BluezError("Failed", "Failed to read UUID of %s" % obj_path)
                svc = {"path": obj_path, "uuid": str(p["UUID"]).lower(),
                       "primary": bool(p.get("Primary", True)), "chars": []}
                self.services.append(svc)
                by_service[obj_path] = svc
        for obj_path, ifaces in sorted(objects.items()):
            obj_path = str(obj_path)
            if CHAR in ifaces:
                p = ifaces[CHAR]
                svc = by_service.get(str(p.get("Service", "")))
                if svc is None or "UUID" not in p or "Flags" not in p:
                    raise BluezError("Failed", "Invalid characteristic %s" % obj_path)
                c = AppChar(obj_path, str(p["UUID"]).lower(), [str(f) for f in p["Flags"]],
                            "NotifyAcquired" in p, "WriteAcquired" in p)
                svc["chars"].append(c)
                self.chars.append(c)
        if not self.services:
            raise BluezError("Failed", "No object received")

    def handles(self):
        handle = 1
        for svc in self.services:
            svc["handle"] = handle
            yield svc["path"], SERVICE, handle
            handle += 1
            for c in svc["chars"]:
                c.handle = handle + 1  # declaration, then value
                yield c.path, CHAR, c.handle
                handle += 2
                if "notify" in c.flags or "indicate" in c.flags:
                    handle += 1  # the CCC descriptor BlueZ adds

    def char_by_path(self, path):
        return next((c for c in self.chars if c.path == path), None)


class AppChar:
    def __init__(self, path, uuid, flags, notify_acquired, write_acquired):
        self.path = path
        self.uuid = uuid
        self.flags = flags
        self.notify_acquired = notify_acquired
        self.write_acquired = write_acquired
        self.handle = 0


# --- The laptop's view of the speaker ------------------------------------------------------------


class RemoteDevice(Obj):
    """org.bluez.Device1 (doc/org.bluez.Device.rst) for the peer. On the laptop: the speaker,
    built from its advertisement; on the speaker: the connected laptop."""

    def __init__(self, daemon, adapter, peer_address, air, name=None, uuids=(), rssi=None):
        super().__init__(daemon, adapter.path + "/" + path_for(peer_address))
        self.air = air
        p = {
            "Address": dbus.String(peer_address),
            "AddressType": dbus.String("public"),
            "Alias": dbus.String(name or peer_address.replace(":", "-")),
            "Paired": dbus.Boolean(False),
            "Bonded": dbus.Boolean(False),
            "Trusted": dbus.Boolean(False),
            "Blocked": dbus.Boolean(False),
            "LegacyPairing": dbus.Boolean(False),
            "Connected": dbus.Boolean(False),
            "ServicesResolved": dbus.Boolean(False),
            "UUIDs": dbus.Array(list(uuids), signature="s"),
            "Adapter": dbus.ObjectPath(adapter.path),
        }
        if name is not None:
            p["Name"] = dbus.String(name)
        if rssi is not None:
            p["RSSI"] = dbus.Int16(rssi)
        self.props[DEVICE] = p

    @dbus.service.method(DEVICE, async_callbacks=("ok", "err"))
    def Connect(self, ok=None, err=None):
        self.air.connect(self, ok, err)

    @dbus.service.method(DEVICE)
    def Disconnect(self):
        # doc/org.bluez.Device.rst Disconnect: "Gracefully disconnects all connected profiles and
        # then terminates low-level ACL connection"; org.bluez.Error.NotConnected when there is
        # no connection (src/device.c dev_disconnect).
        by = "central" if self.daemon is self.air.laptop else "peripheral"
        connected = bool(self.props[DEVICE]["Connected"])
        emit("DISCONNECT_REQUEST by=%s connected=%s" % (by, str(connected).lower()))
        if not connected:
            raise BluezError("NotConnected", "Not Connected")
        self.air.disconnect(by=by)

    @dbus.service.method(DEVICE)
    def Pair(self):
        # No bonding here: the link protocol carries its own security (docs/ble.md).
        raise BluezError("AuthenticationFailed", "Authentication Failed")

    @dbus.service.method(DEVICE)
    def CancelPairing(self):
        raise BluezError("DoesNotExist", "Does Not Exist")


class MirrorService(Obj):
    """org.bluez.GattService1 mirror on the laptop (doc/org.bluez.GattService.rst), at
    `dev_…/serviceXXXX` (the handle in hex, as src/gatt-client.c names it)."""

    def __init__(self, daemon, device, svc):
        super().__init__(daemon, "%s/service%04x" % (device.path, svc["handle"]))
        self.props[SERVICE] = {
            "UUID": dbus.String(svc["uuid"]),
            "Primary": dbus.Boolean(svc["primary"]),
            "Device": dbus.ObjectPath(device.path),
            "Handle": dbus.UInt16(svc["handle"]),
            "Includes": dbus.Array([], signature="o"),
        }


class MirrorChar(Obj):
    """org.bluez.GattCharacteristic1 mirror on the laptop (doc/org.bluez.GattCharacteristic.rst,
    "Client" side), forwarding to the application's characteristic on the speaker."""

    def __init__(self, daemon, service, char, link):
        super().__init__(daemon, "%s/char%04x" % (service.path, char.handle))
        self.char = char
        self.link = link
        self.notify_clients = set()
        p = {
            "UUID": dbus.String(char.uuid),
            "Service": dbus.ObjectPath(service.path),
            "Flags": dbus.Array(char.flags, signature="s"),
            "Handle": dbus.UInt16(char.handle),
            "Notifying": dbus.Boolean(False),
            "Value": dbus.Array([], signature="y"),
            # "MTU [read-only]: Characteristic MTU" (doc/org.bluez.GattCharacteristic.rst).
            "MTU": dbus.UInt16(link.mtu),
        }
        if "notify" in char.flags:
            p["NotifyAcquired"] = dbus.Boolean(False)
        if "write-without-response" in char.flags:
            p["WriteAcquired"] = dbus.Boolean(False)
        self.props[CHAR] = p

    def _options(self, options, allowed):
        out = {}
        for k, v in options.items():
            if k not in allowed:
                continue
            if k == "offset":
                # "uint16 offset" (doc/org.bluez.GattCharacteristic.rst); src/gatt-client.c
                # parse_options rejects any other type.
                if not isinstance(v, dbus.UInt16):
                    raise BluezError("InvalidArguments", "Invalid arguments in method call")
            if k == "type" and str(v) not in ("command", "request", "reliable"):
                raise BluezError("InvalidArguments", "Invalid arguments in method call")
            out[k] = v
        return out

    @dbus.service.method(CHAR, in_signature="a{sv}", out_signature="ay",
                         async_callbacks=("ok", "err"))
    def ReadValue(self, options, ok=None, err=None):
        try:
            opts = self._options(options, {"offset"})
        except BluezError as e:
            err(e)
            return
        if "read" not in self.char.flags:
            err(BluezError("NotPermitted", "Read not permitted"))
            return
        self.link.read(self, int(opts.get("offset", 0)), ok, err)

    @dbus.service.method(CHAR, in_signature="aya{sv}", async_callbacks=("ok", "err"))
    def WriteValue(self, value, options, ok=None, err=None):
        try:
            opts = self._options(options, {"offset", "type"})
        except BluezError as e:
            err(e)
            return
        kind = str(opts.get("type", ""))
        if not kind:
            # No type: BlueZ picks from the flags (src/gatt-client.c).
            kind = "request" if "write" in self.char.flags else "command"
        if kind in ("request", "reliable") and "write" not in self.char.flags:
            err(BluezError("NotPermitted", "Write not permitted"))
            return
        if kind == "command" and "write-without-response" not in self.char.flags:
            err(BluezError("NotSupported", "Operation is not supported"))
            return
        self.link.write(self, bytes(value), int(opts.get("offset", 0)), kind, ok, err)

    @dbus.service.method(CHAR, sender_keyword="sender", async_callbacks=("ok", "err"))
    def StartNotify(self, sender=None, ok=None, err=None):
        if self.link.air.args.stall_subscribe:
            # The speaker never answers the CCCD write (as with --stall-reads, BlueZ's ATT
            # timeout would come later than the companion's own limit).
            emit("SUBSCRIBE_STALLED")
            return
        try:
            self.start_notify(sender)
        except BluezError as e:
            err(e)
            return
        ok()

    def start_notify(self, sender):
        if not ("notify" in self.char.flags or "indicate" in self.char.flags):
            raise BluezError("NotSupported", "Notify/Indicate not supported")
        if not self.link.up:
            raise BluezError("NotConnected", "Not Connected")
        if sender in self.notify_clients:
            raise BluezError("InProgress", "In Progress")
        self.notify_clients.add(sender)
        # A client that leaves the bus (exits, is killed) loses its notify session: BlueZ
        # watches its unique name (src/gatt-client.c notify_client_create ->
        # g_dbus_add_disconnect_watch -> notify_client_disconnect), and the last one gone
        # unsubscribes. A client that is alive but stuck keeps it.
        self.daemon.bus.watch_name_owner(sender, lambda owner, s=sender: (
            owner == "" and self.drop_notify_client(s, "left-bus")))
        if not self.props[CHAR]["Notifying"]:
            self.link.subscribe(self)
            self.set_prop(CHAR, "Notifying", dbus.Boolean(True))

    @dbus.service.method(CHAR, sender_keyword="sender")
    def StopNotify(self, sender=None):
        if sender not in self.notify_clients:
            raise BluezError("Failed", "No notify session started")
        self.drop_notify_client(sender, "stop")

    def drop_notify_client(self, sender, why):
        if sender not in self.notify_clients:
            return
        self.notify_clients.discard(sender)
        if why != "stop":
            emit("NOTIFY_CLIENT_GONE why=%s" % why)
        # (A watch that fires after the link went down finds a mirror no longer exported.)
        if not self.notify_clients and (self.link.up or why == "stop"):
            self.link.unsubscribe(self)
            self.set_prop(CHAR, "Notifying", dbus.Boolean(False))

    @dbus.service.method(CHAR, in_signature="a{sv}", out_signature="hq")
    def AcquireWrite(self, options):
        # Neither bluez-async nor btleplug calls it (both use WriteValue); refuse as BlueZ does
        # for a characteristic without write-without-response (doc/org.bluez.GattCharacteristic.rst).
        violation("AcquireWrite-called")
        raise BluezError("NotSupported", "Operation is not supported")

    @dbus.service.method(CHAR, in_signature="a{sv}", out_signature="hq")
    def AcquireNotify(self, options):
        violation("AcquireNotify-called")
        raise BluezError("NotSupported", "Operation is not supported")


# --- The air: one LE link between the laptop (central) and the speaker (peripheral) --------------


class Air:
    """Advertising seen by a scanning laptop, one LE connection, and the ATT traffic on it."""

    def __init__(self, args):
        self.args = args
        self.speaker = None
        self.laptop = None
        self.device = None  # the laptop's Device1 for the speaker
        self.peer = None  # the speaker's Device1 for the laptop
        self.peer_expiry = None
        self.link = None
        self.rssi_timer = None
        self.expiry = None
        # A fault fires once: the next attempt must be able to pair.
        self.fault_spent = False
        # Counts disconnects: a late Connected=false never overrides a newer connection.
        self.generation = 0

    def setup(self, speaker, laptop):
        self.speaker, self.laptop = speaker, laptop
        # The app's notifications: bluer emits PropertiesChanged(Value) on its characteristic
        # from its own connection (doc/org.bluez.GattCharacteristic.rst "Value ... upon which a
        # PropertiesChanged signal will be emitted").
        speaker.bus.add_signal_receiver(
            self.app_properties_changed, signal_name="PropertiesChanged",
            dbus_interface=PROPS, path_keyword="path", sender_keyword="sender")
        self.rssi_timer = GLib.timeout_add(1000, self.tick)

    # Advertising and scanning.

    def visible_adv(self):
        if self.speaker.adapter is None or self.laptop.adapter is None:
            return None
        adv = self.speaker.adapter.adv
        if adv is None or not self.laptop.adapter.powered:
            return None
        want = self.laptop.adapter.filter_uuids
        # doc/org.bluez.Adapter.rst SetDiscoveryFilter UUIDs: "only devices which advertise
        # ... one of the UUIDs".
        if want and not any(u in want for u in adv.uuids):
            return None
        return adv

    def changed(self):
        """Something changed (advertising, discovery, power): update the laptop's view."""
        adv = self.visible_adv()
        scanning = self.laptop.adapter is not None and self.laptop.adapter.discovering
        if adv is not None and scanning:
            self.found(adv)
        if self.link is not None and (self.speaker.adapter is None
                                      or not self.speaker.adapter.powered
                                      or self.speaker.adapter.app is None):
            self.disconnect(by="peripheral")

    def found(self, adv):
        if self.device is None:
            self.device = RemoteDevice(self.laptop, self.laptop.adapter,
                                       self.speaker.adapter.props[ADAPTER]["Address"], self,
                                       name=adv.local_name, uuids=adv.uuids, rssi=-52)
            self.laptop.add(self.device)
            emit("DEVICE_FOUND name=%s" % (adv.local_name or "-"))
        else:
            d = self.device
            if adv.local_name and d.props[DEVICE].get("Name") != adv.local_name:
                d.set_prop(DEVICE, "Name", dbus.String(adv.local_name))
                d.set_prop(DEVICE, "Alias", dbus.String(adv.local_name))
            d.set_prop(DEVICE, "UUIDs", dbus.Array(adv.uuids, signature="s"))
        self.expiry = None

    def tick_peer(self):
        if self.peer is not None and self.link is None and self.peer_expiry is not None:
            self.peer_expiry += 1
            if self.peer_expiry >= self.args.temporary_timeout:
                self.speaker.remove(self.peer.path)
                self.peer = None
                self.peer_expiry = None

    def tick(self):
        """Each second: a scanning laptop hears the advertisement again (RSSI update, as with
        DuplicateData); a device not heard for the temporary timeout is removed (src/main.conf
        TemporaryTimeout, default 30 s)."""
        self.tick_peer()
        adv = self.visible_adv()
        scanning = self.laptop.adapter is not None and self.laptop.adapter.discovering
        if self.device is not None:
            if adv is not None and scanning:
                self.found(adv)
                rssi = -50 - (int(GLib.get_monotonic_time() / 1e6) % 5)
                self.device.set_prop(DEVICE, "RSSI", dbus.Int16(rssi))
            elif self.link is None:
                self.expiry = (self.expiry or 0) + 1
                if self.expiry >= self.args.temporary_timeout:
                    self.remove_device(self.laptop, self.device.path)
        elif adv is not None and scanning:
            self.found(adv)
        return True

    def remove_device(self, daemon, path):
        if self.device is not None and path == self.device.path:
            if self.link is not None:
                self.disconnect(by="central")
            self.laptop.remove(path)
            self.device = None
            emit("DEVICE_REMOVED")

    # Connection.

    def connect(self, device, ok, err):
        if device.daemon is not self.laptop:
            err(BluezError("NotSupported", "Operation is not supported"))
            return
        if not self.laptop.adapter.powered:
            err(BluezError("NotReady", "Resource Not Ready"))
            return
        if self.link is not None:
            # Already connected: BlueZ answers at once (src/device.c dev_connect).
            ok()
            return
        adv = self.speaker.adapter.adv if self.speaker.adapter else None
        app = self.speaker.adapter.app if self.speaker.adapter else None
        if app is None or (adv is None and not self.args.connectable_without_adv) \
                or (adv is not None and adv.type != "peripheral"):
            # Nobody connectable answers: the LE Create Connection is cancelled
            # (doc/org.bluez.Device.rst Connect; reason string from src/device.c).
            err(BluezError("Failed", "le-connection-abort-by-local"))
            return
        self.link = Link(self, app, self.args.mtu)
        # The speaker's BlueZ has a Device1 for the connected laptop (bluer's
        # Adapter::device(address).disconnect() calls it); it stays after a disconnect as a
        # temporary device (src/main.conf TemporaryTimeout), so it is reused on reconnection.
        if self.peer is None:
            self.peer = RemoteDevice(self.speaker, self.speaker.adapter,
                                     self.laptop.adapter.props[ADAPTER]["Address"], self)
            self.peer.props[DEVICE]["Connected"] = dbus.Boolean(True)
            self.speaker.add(self.peer)
        else:
            self.peer.set_prop(DEVICE, "Connected", dbus.Boolean(True))
        self.peer_expiry = None
        device.set_prop(DEVICE, "Connected", dbus.Boolean(True))
        # BlueZ exports the remote GATT objects first, then sets ServicesResolved
        # (doc/org.bluez.Device.rst ServicesResolved; src/device.c gatt_client_ready_cb).
        self.link.export(device)
        device.set_prop(DEVICE, "ServicesResolved", dbus.Boolean(True))
        emit("CONNECTED mtu=%d" % self.link.mtu)
        ok()

    def disconnect(self, by):
        link, self.link = self.link, None
        if link is None:
            return
        link.down(by)
        self.generation += 1
        lag = self.args.connected_lag_ms if by != "central" else 0
        if lag:
            # A link the laptop did not end itself: BlueZ learns of it twice. The ATT bearer's
            # socket closes first and the GATT client drops the remote objects
            # (src/device.c att_disconnected_cb -> gatt_client_cleanup, src/gatt-client.c
            # btd_gatt_client_disconnected); Device1.Connected turns false only when the
            # controller's Disconnection Complete arrives through mgmt (src/adapter.c
            # dev_disconnected -> device_remove_connection). In between, a write to the
            # vanished characteristic fails while Connected still reads true.
            gen = self.generation
            GLib.timeout_add(lag, lambda: self.disconnected(gen) and False)
        else:
            self.disconnected(self.generation)
        if self.peer is not None:
            self.peer.set_prop(DEVICE, "Connected", dbus.Boolean(False))
            self.peer_expiry = 0
        emit("DISCONNECTED by=%s" % by)

    def disconnected(self, gen):
        """The laptop's Device1 reports the link gone (unless it reconnected meanwhile)."""
        if gen != self.generation or self.link is not None or self.device is None:
            return
        self.device.set_prop(DEVICE, "ServicesResolved", dbus.Boolean(False))
        self.device.set_prop(DEVICE, "Connected", dbus.Boolean(False))
        if self.args.connected_lag_ms:
            emit("CONNECTED_FALSE")

    def app_properties_changed(self, iface, changed, invalidated, path=None, sender=None):
        if iface != CHAR or "Value" not in changed or self.link is None:
            return
        if sender != self.link.app.sender:
            return
        self.link.app_value(path, bytes(changed["Value"]))


class Link:
    """One LE connection: a fixed negotiated MTU (both stacks exchange MTUs at connection,
    BlueZ up to 517), the ATT procedures, and the faults a test asks for."""

    def __init__(self, air, app, mtu):
        self.air = air
        self.app = app
        self.mtu = max(MIN_MTU, min(MAX_MTU, mtu))
        self.up = True
        self.mirrors = {}  # app char path -> MirrorChar
        self.paths = []
        self.subscribed = {}  # app char path -> "indicate"|"notify"
        self.pending_confirm = None  # (mirror, timer)
        self.queue = []
        self.writes = 0
        self.indications = 0
        self.speaker = air.speaker
        self.laptop = air.laptop

    def opts(self, offset=0):
        # What BlueZ passes to an application's ReadValue/WriteValue: device, mtu, link, and
        # offset when non-zero (doc/org.bluez.GattCharacteristic.rst "server only" options;
        # src/gatt-database.c append_options). No "type" is sent.
        o = {"device": dbus.ObjectPath(self.air.peer.path), "mtu": dbus.UInt16(self.mtu),
             "link": dbus.String("LE")}
        if offset:
            o["offset"] = dbus.UInt16(offset)
        return dbus.Dictionary(o, signature="sv")

    def export(self, device):
        for svc in self.app.services:
            ms = MirrorService(self.laptop, device, svc)
            self.laptop.add(ms)
            self.paths.append(ms.path)
            for c in svc["chars"]:
                mc = MirrorChar(self.laptop, ms, c, self)
                self.laptop.add(mc)
                self.paths.append(mc.path)
                self.mirrors[c.path] = mc

    def down(self, by):
        self.up = False
        if self.pending_confirm is not None:
            GLib.source_remove(self.pending_confirm[1])
            self.pending_confirm = None
        # The last subscriber is gone: BlueZ tells the application (src/gatt-database.c, CCC
        # state of a disconnected device dropped -> StopNotify).
        for path in list(self.subscribed):
            self.call_app(path, "StopNotify", "", ())
        self.subscribed.clear()
        for path in reversed(self.paths):
            self.laptop.remove(path)
        self.paths.clear()

    def call_app(self, path, method, sig, args, ok=None, err=None, timeout=ATT_TIMEOUT_S):
        self.speaker.bus.call_async(
            self.app.sender, path, CHAR, method, sig, args,
            ok or (lambda *a: None),
            err or (lambda e: emit("NOTE %s on %s failed: %s" % (method, path,
                                                                  e.get_dbus_name()))),
            timeout=timeout)

    def reply_error(self, err, e, is_read):
        code = app_error_to_att(e.get_dbus_name(), e.get_dbus_message(), is_read)
        emit("ATT_ERROR code=0x%02x from=%s" % (code, e.get_dbus_name()))
        err(att_to_central_error(code))

    # Read: Read Request, then Read Blob Requests while the response is full (MTU - 1 bytes):
    # the central's ReadValue returns the whole value (src/shared/gatt-client.c read_long).

    def read(self, mirror, offset, ok, err):
        if self.air.args.stall_reads:
            # The speaker never answers. (BlueZ would drop the bearer after ATT_TIMEOUT_S; the
            # companion gives up well before that, which is what this fault is for.)
            emit("READ_STALLED")
            return
        chunk = self.mtu - 1
        got = bytearray()

        def step(off):
            if not self.up:
                err(BluezError("Failed", "Not connected"))
                return
            self.call_app(mirror.char.path, "ReadValue", "a{sv}", (self.opts(off),),
                          lambda v: answered(off, bytes(v)),
                          lambda e: self.reply_error(err, e, True))

        def answered(off, value):
            if off + len(value) > MAX_ATTR:
                violation("read-value-over-512-bytes len=%d" % (off + len(value)))
                value = value[:max(0, MAX_ATTR - off)]
            part = value[:chunk]
            got.extend(part)
            if len(part) == chunk and off + len(part) < MAX_ATTR:
                step(off + len(part))
            else:
                mirror.set_prop(CHAR, "Value", dbus.Array(bytes(got), signature="y"))
                ok(dbus.Array(bytes(got), signature="y"))

        step(offset)

    # Write Request (or a long write when the value is over MTU - 3).

    def write(self, mirror, value, offset, kind, ok, err):
        if not self.up:
            err(BluezError("Failed", "Not connected"))
            return
        if offset + len(value) > MAX_ATTR:
            err(att_to_central_error(0x0D))
            return
        self.writes += 1
        n = self.writes
        emit("WRITE n=%d len=%d kind=%s" % (n, len(value), kind))
        fault = self.air.args
        if kind == "command" and len(value) > self.mtu - 3:
            err(BluezError("Failed", "Operation failed with ATT error: 0x0d"))
            return
        if len(value) > self.mtu - 3:
            # Prepare Write + Execute Write: the application sees one WriteValue per prepared
            # part with its offset (src/gatt-database.c). Our programs should never need it.
            emit("LONG_WRITE len=%d mtu=%d" % (len(value), self.mtu))
        part = self.mtu - 5 if len(value) > self.mtu - 3 else len(value)
        parts = [(offset + i, value[i:i + part]) for i in range(0, len(value), part)] or \
            [(offset, b"")]

        def send(i):
            if i == len(parts):
                if fault.disconnect_after_writes and n >= fault.disconnect_after_writes \
                        and not self.air.fault_spent:
                    self.air.fault_spent = True
                    ok()
                    self.air.disconnect(by="fault")
                    return
                if kind == "command":
                    return
                ok()
                return
            off, data = parts[i]
            self.call_app(mirror.char.path, "WriteValue", "aya{sv}",
                          (dbus.Array(data, signature="y"), self.opts(off)),
                          lambda: send(i + 1) if self.up else err(
                              BluezError("Failed", "Not connected")),
                          lambda e: self.reply_error(err, e, False))

        if kind == "command":
            # Write Command: no response awaited (src/gatt-database.c).
            ok()
        send(0)

    # Notifications and indications.

    def subscribe(self, mirror):
        # The CCC write: indications when the characteristic can only indicate, notifications
        # otherwise (src/gatt-client.c prefers notify). BlueZ then calls StartNotify on the
        # application for its first subscriber (src/gatt-database.c ccc_write_cb).
        kind = "notify" if "notify" in mirror.char.flags else "indicate"
        path = mirror.char.path
        if mirror.char.notify_acquired:
            violation("peripheral-uses-AcquireNotify")
        self.subscribed[path] = kind
        emit("SUBSCRIBED kind=%s" % kind)
        self.call_app(path, "StartNotify", "", ())

    def unsubscribe(self, mirror):
        path = mirror.char.path
        if self.subscribed.pop(path, None) is not None:
            self.call_app(path, "StopNotify", "", ())

    def app_value(self, path, value):
        kind = self.subscribed.get(path)
        mirror = self.mirrors.get(path)
        if kind is None or mirror is None:
            return
        # "values over MTU - 3": BlueZ would cut them (src/shared/gatt-server.c); a stand-in
        # that cut silently would hide the bug, so it refuses and reports the violation.
        if len(value) > MAX_ATTR:
            violation("notified-value-over-512-bytes len=%d" % len(value))
            return
        if len(value) > self.mtu - 3:
            violation("notified-value-over-mtu-3 len=%d mtu=%d" % (len(value), self.mtu))
            return
        if kind == "notify":
            self.deliver(mirror, value)
            return
        self.queue.append((mirror, value))
        if self.pending_confirm is None:
            self.next_indication()

    def next_indication(self):
        if not self.queue or not self.up:
            return
        mirror, value = self.queue.pop(0)
        self.indications += 1
        n = self.indications
        emit("INDICATION n=%d len=%d" % (n, len(value)))
        self.deliver(mirror, value)
        args = self.air.args
        if args.disconnect_after_indications and n >= args.disconnect_after_indications \
                and not self.air.fault_spent:
            self.air.fault_spent = True
            # The central goes away in the middle of the stream (out of range, or the user).
            GLib.idle_add(lambda: self.air.disconnect(by="central") and False)
            return
        if args.no_confirm_after and n >= args.no_confirm_after and not self.air.fault_spent:
            self.air.fault_spent = True
            # The central's stack never confirms: after the ATT timeout the bearer is dropped.
            emit("CONFIRM_WITHHELD n=%d" % n)
            timer = GLib.timeout_add_seconds(ATT_TIMEOUT_S, self.att_timeout)
            self.pending_confirm = (mirror, timer)
            return
        # The central's BlueZ confirms each indication by itself (doc/org.bluez.
        # GattCharacteristic.rst AcquireNotify: "As a client if indication procedure is used the
        # confirmation is generated automatically once received"); the speaker's BlueZ passes it
        # to the application with Confirm() (same document, "Confirm() [noreply]").
        msg = dbus.lowlevel.MethodCallMessage(self.app.sender, mirror.char.path, CHAR, "Confirm")
        msg.set_no_reply(True)
        self.speaker.bus.send_message(msg)
        self.pending_confirm = None
        GLib.idle_add(lambda: self.next_indication() and False)

    def att_timeout(self):
        emit("ATT_TIMEOUT")
        self.pending_confirm = None
        self.air.disconnect(by="timeout")
        return False

    def deliver(self, mirror, value):
        # src/gatt-client.c notify_cb: Value is set and PropertiesChanged emitted for every
        # notification, changed or not.
        mirror.set_prop(CHAR, "Value", dbus.Array(value, signature="y"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--speaker-bus", required=True)
    ap.add_argument("--laptop-bus", required=True)
    ap.add_argument("--mtu", type=int, default=517)
    ap.add_argument("--speaker-adapter", choices=["on", "off", "blocked", "missing"],
                    default="on")
    ap.add_argument("--laptop-adapter", choices=["on", "off", "blocked", "missing"],
                    default="on")
    ap.add_argument("--temporary-timeout", type=int, default=30)
    ap.add_argument("--connectable-without-adv", action="store_true",
                    help="a known speaker can be connected when it does not advertise "
                         "(status over BLE outside the pairing window)")
    ap.add_argument("--disconnect-after-indications", type=int, default=0)
    ap.add_argument("--disconnect-after-writes", type=int, default=0)
    ap.add_argument("--no-confirm-after", type=int, default=0)
    ap.add_argument("--connected-lag-ms", type=int, default=0,
                    help="a link lost without the laptop's Disconnect: its GATT objects go at "
                         "once, Device1.Connected turns false this much later (as in BlueZ)")
    ap.add_argument("--stall-reads", action="store_true",
                    help="a read from the laptop is never answered (a speaker that stalls while "
                         "the companion reads its information characteristic)")
    ap.add_argument("--stall-subscribe", action="store_true",
                    help="StartNotify from the laptop is never answered (a speaker that stalls "
                         "while the companion sets the link up)")
    args = ap.parse_args()
    if not MIN_MTU <= args.mtu <= MAX_MTU:
        ap.error("--mtu must be 23..517")

    DBusGMainLoop(set_as_default=True)
    air = Air(args)
    daemons = {}
    for label, address, mode, mac in (("speaker", args.speaker_bus, args.speaker_adapter,
                                       "00:A5:0A:00:00:01"),
                                      ("laptop", args.laptop_bus, args.laptop_adapter,
                                       "00:A5:0B:00:00:02")):
        d = Daemon(label, address)
        if mode != "missing":
            d.adapter = Adapter(d, mac, powered=(mode == "on"),
                                rfkill_blocked=(mode == "blocked"), air=air)
            d.add(d.adapter, signal=False)
        daemons[label] = d
    air.setup(daemons["speaker"], daemons["laptop"])
    emit("STANDIN_READY mtu=%d speaker=%s laptop=%s" % (args.mtu, args.speaker_adapter,
                                                       args.laptop_adapter))
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, 15, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, 2, loop.quit)
    loop.run()


if __name__ == "__main__":
    sys.exit(main())
