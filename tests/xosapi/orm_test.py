"""Drives XOS's own, unmodified Python client (xosapi 4.0.4 from PyPI)
against a syncplane server, as an XOS script or synchronizer would.

Run by `tests/all/xosapi.rs`, which starts the server and passes:

    orm_test.py PHASE ENDPOINT CACERT WORK_DIR USERNAME PASSWORD

PHASE `main` exercises the ORM; PHASE `reconnect` is a new client process
(XOS's synchronizers restart to reload models) that must see the model
`ShopItem`, installed after the server started. Prints `ok: ...` per check
and exits non-zero on the first failure.

xosapi was written for Python 2.7. The Python 3 shims below are the
smallest that let it run; none changes what the client sends on the wire.
"""

from __future__ import print_function

import base64
import os
import sys
import tempfile
import traceback

PHASE, ENDPOINT, CACERT, WORK_DIR, USERNAME, PASSWORD = sys.argv[1:7]

# --- Python 3 shims (client side only) ---------------------------------

# Shim 1: the client compiles the downloaded .proto files with
# `python -m grpc.tools.protoc ... --plugin=protoc-gen-gw=gw_gen.py --gw_out=.`,
# and Chameleon's REST-gateway plugin `gw_gen.py` is Python 2: it reads
# and writes protoc's binary messages as text and calls `dict.iterkeys()`.
# Ported in place (three edits, idempotent); its output (`*_gw.py`) is not
# used by xosapi. It also needs `jinja2`, which xosapi does not declare.
import grpc  # noqa: E402
import xosapi  # noqa: E402

_GW_GEN = os.path.join(
    os.path.dirname(xosapi.__file__), "chameleon_client", "protoc_plugins", "gw_gen.py"
)
with open(_GW_GEN) as f:
    _source = f.read()
_ported = (
    _source.replace(".iterkeys()", ".keys()")
    .replace("data = sys.stdin.read()", "data = sys.stdin.buffer.read()")
    .replace("sys.stdout.write(output)", "sys.stdout.buffer.write(output)")
)
if _ported != _source:
    with open(_GW_GEN, "w") as f:
        f.write(_ported)

# XOS scripts initialise xosconfig before importing xosapi (not a shim).
CONFIG = os.path.join(tempfile.mkdtemp(prefix="xosapi-config-"), "config.yaml")
with open(CONFIG, "w") as f:
    f.write(
        "name: xosapi-test\n"
        "logging:\n"
        "  version: 1\n"
        "  handlers:\n"
        "    console:\n"
        "      class: logging.StreamHandler\n"
        "  loggers:\n"
        "    '':\n"
        "      handlers: [console]\n"
        "      level: WARNING\n"
    )
from xosconfig import Config  # noqa: E402

Config.init(CONFIG, "synchronizer-config-schema.yaml")

from twisted.internet import reactor  # noqa: E402
from xosapi import xos_grpc_client  # noqa: E402


# Shim 2: the credentials plugin base64-encodes a `str`, which Python 3
# refuses. The same header, computed on bytes: `Basic base64(user:password)`.
def _basic_auth(self, context, callback):
    token = base64.b64encode(
        ("%s:%s" % (self._username, self._password)).encode("utf-8")
    ).decode("ascii")
    callback((("authorization", "Basic %s" % token),), None)


xos_grpc_client.UsernamePasswordCallCredentials.__call__ = _basic_auth


# Shim 3: SecureClient reads the CA certificate in text mode and hands the
# `str` to grpc, which takes bytes in Python 3. The same certificate.
def _ssl_channel_credentials(root_certificates=None, *args, **kwargs):
    if isinstance(root_certificates, str):
        root_certificates = root_certificates.encode("ascii")
    return grpc.ssl_channel_credentials(root_certificates, *args, **kwargs)


xos_grpc_client.ssl_channel_credentials = _ssl_channel_credentials

# --- the checks ----------------------------------------------------------

failed = []


def check(what, cond, detail=""):
    if cond:
        print("ok: %s" % what)
    else:
        print("FAILED: %s %s" % (what, detail))
        failed.append(what)
        raise AssertionError("%s %s" % (what, detail))


def code_of(call):
    """The gRPC status code `call()` fails with, or None."""
    try:
        call()
    except grpc.RpcError as e:
        return e.code()
    return None


def connect(callback, **credentials):
    """A SecureClient as XOS scripts make it; `callback(client)` once the
    schema is downloaded, compiled and the ORM built."""
    work_dir = tempfile.mkdtemp(prefix="xosapi-protos-", dir=WORK_DIR)
    client = xos_grpc_client.SecureClient(
        endpoint=ENDPOINT, cacert=CACERT, work_dir=work_dir, **credentials
    )
    client.set_reconnect_callback(lambda: guarded(callback, client))
    client.start()
    return client


def guarded(step, client):
    try:
        step(client)
    except Exception:
        traceback.print_exc()
        failed.append(step.__name__)
        reactor.stop()


def main_phase(client):
    orm = client.xos_orm
    check("the ORM has the core models", "Site" in orm.all_model_names and "Node" in orm.all_model_names)
    check("content types come from xosoptions", orm.reverse_content_type_map.get("Site") == "core.site",
          str(orm.reverse_content_type_map.get("Site")))

    before = len(orm.Site.objects.all())

    # create, get
    site = orm.Site(name="xosapi-site", login_base="xsite", abbreviated_name="xs")
    site.save()
    check("create answers an id", site.id > 0, str(site.id))
    got = orm.Site.objects.get(id=site.id)
    check("get", got.name == "xosapi-site" and got.login_base == "xsite")
    check("class_names is leaf first", got.class_names.split(",")[0] == "Site", got.class_names)
    check("self_content_type_id", got.self_content_type_id == "core.site", got.self_content_type_id)
    check("defaults read back (True)", got.is_public is True, repr(got.is_public))
    check("list", len(orm.Site.objects.all()) == before + 1)

    # filter by field
    found = orm.Site.objects.filter(name="xosapi-site")
    check("filter by field", [s.id for s in found] == [site.id], str(found))
    check("filter by __iexact", [s.id for s in orm.Site.objects.filter(name__iexact="XOSAPI-SITE")] == [site.id])
    check("get by a field", orm.Site.objects.get(login_base="xsite").id == site.id)

    # links: a node of the site
    node = orm.Node(name="xosapi-node")
    node.site = got
    node.save()
    node = orm.Node.objects.get(id=node.id)
    check("node.site follows the link", node.site.id == site.id and node.site.name == "xosapi-site")
    check("node.site_id", node.site_id == site.id)
    check("filter by link id", [n.id for n in orm.Node.objects.filter(site_id=site.id)] == [node.id])
    got = orm.Site.objects.get(id=site.id)
    check("site.nodes_ids (reverse link)", list(got.nodes_ids) == [node.id], str(list(got.nodes_ids)))
    check("site.nodes.all()", [n.id for n in got.nodes.all()] == [node.id])

    # many-to-many, as the ORM writes it (an id list on the message)
    label = orm.NodeLabel(name="xosapi-label")
    label.node.add(node)
    label.save()
    label = orm.NodeLabel.objects.get(id=label.id)
    check("manytomany node_ids", list(label.node_ids) == [node.id], str(list(label.node_ids)))
    check("manytomany .all()", [n.id for n in label.node.all()] == [node.id])

    # synchronizer kinds
    dirty = orm.Node.objects.filter_special(orm.Node.objects.SYNCHRONIZER_DIRTY_OBJECTS)
    check("SYNCHRONIZER_DIRTY_OBJECTS has the new node", node.id in [n.id for n in dirty], str(dirty))
    policies = orm.Node.objects.filter_special(orm.Node.objects.SYNCHRONIZER_DIRTY_POLICIES)
    check("SYNCHRONIZER_DIRTY_POLICIES answers", isinstance(policies, list))

    # update with update_fields (save_changed_fields sends them)
    got = orm.Site.objects.get(id=site.id)
    got.site_url = "http://xosapi.example"
    got.abbreviated_name = "changed"
    check("changed_fields", sorted(got.changed_fields) == ["abbreviated_name", "site_url"], str(got.changed_fields))
    got.save(update_fields=["site_url"])
    again = orm.Site.objects.get(id=site.id)
    check("update_fields is honoured", again.site_url == "http://xosapi.example" and again.abbreviated_name == "xs",
          "%r %r" % (again.site_url, again.abbreviated_name))
    again.abbreviated_name = "xs2"
    again.save_changed_fields()
    check("save_changed_fields", orm.Site.objects.get(id=site.id).abbreviated_name == "xs2")

    # a plain save of the whole object, bookkeeping fields echoed; False reads back as False
    whole = orm.Site.objects.get(id=site.id)
    whole.is_public = False
    whole.save()
    whole = orm.Site.objects.get(id=site.id)
    check("False reads back as False", whole.is_public is False, repr(whole.is_public))
    check("the rest is kept", whole.abbreviated_name == "xs2" and whole.site_url == "http://xosapi.example")
    check("filter on a boolean", site.id in [s.id for s in orm.Site.objects.filter(is_public=False)])

    # a bookkeeping field changed by a user is refused, naming it
    whole.backend_status = "forged"
    code = code_of(lambda: whole.save(update_fields=["backend_status"]))
    check("a changed bookkeeping field is refused", code == grpc.StatusCode.INVALID_ARGUMENT
          or code == grpc.StatusCode.PERMISSION_DENIED, str(code))

    # delete: soft; Get still answers it, List and Filter leave it out
    node.delete()
    check("list leaves deleted objects out", node.id not in [n.id for n in orm.Node.objects.all()])
    # No step serves Node, so the host purges the deleted node as soon as its
    # engine sees it: until then Get and deleted_objects answer it, after it
    # is NOT_FOUND. Both are what XOS did once its reaper had run.
    try:
        gone = orm.Node.objects.get(id=node.id)
        check("get answers a deleted object", gone.deleted is True)
    except grpc.RpcError as e:
        check("a purged object is NOT_FOUND", e.code() == grpc.StatusCode.NOT_FOUND, str(e.code()))
    deleted = orm.Node.deleted_objects.all()
    check("deleted_objects answers deleted objects only", all(n.deleted for n in deleted), str(deleted))

    # errors
    code = code_of(lambda: orm.Site.objects.get(id=999999))
    check("a missing object is NOT_FOUND", code == grpc.StatusCode.NOT_FOUND, str(code))
    code = code_of(lambda: orm.Site(name="xosapi-site", login_base="x").save())
    check("a duplicate is refused", code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION),
          str(code))

    # utility.Login, then a client with the session (x-xossession)
    answer = client.utility.Login(client.utility_pb2.LoginRequest(username=USERNAME, password=PASSWORD))
    check("Login answers a session", len(answer.sessionid) > 10)
    connect(session_phase, sessionid=answer.sessionid)


def session_phase(client):
    names = [s.name for s in client.xos_orm.Site.objects.all()]
    check("a session (x-xossession) reads", "xosapi-site" in names, str(names))
    connect(wrong_password_phase, username=USERNAME, password="wrong")


def wrong_password_phase(client):
    # GetSchema needs no credentials, so the client connects; the ORM's calls fail.
    code = code_of(lambda: client.xos_orm.Site.objects.all())
    check("a wrong password is PERMISSION_DENIED", code == grpc.StatusCode.PERMISSION_DENIED, str(code))
    reactor.stop()


def reconnect_phase(client):
    orm = client.xos_orm
    check("a model installed after start is seen after a reconnect", "ShopItem" in orm.all_model_names,
          str(orm.all_model_names))
    item = orm.ShopItem(name="apple")
    item.save()
    check("and used", [i.name for i in orm.ShopItem.objects.all()] == ["apple"])
    reactor.stop()


if __name__ == "__main__":
    first = {"main": main_phase, "reconnect": reconnect_phase}[PHASE]
    connect(first, username=USERNAME, password=PASSWORD)
    reactor.callLater(120, lambda: (failed.append("timeout"), reactor.stop()))
    reactor.run()
    if failed:
        print("FAILED: %s" % ", ".join(failed))
        sys.exit(1)
    print("all checks passed")
