"""The benchmark workload for pyinfra: the same templates as microctl/ and ansible/."""
import os

from pyinfra import host
from pyinfra.operations import files, server

T = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "workload", "templates")
d = host.data
root = d.root
ctx = dict(inventory_name=d.inventory_name, root=root, private_address=d.private_address,
           upstream_port=d.upstream_port, workers=d.workers, all_hosts=d.all_hosts)

for sub in ("systemd", "app", "prometheus"):
    files.directory(name=f"directory {sub}", path=f"{root}/etc/{sub}", mode="755")
for name, dest, mode in [
    ("gunicorn.service.j2", "etc/systemd/gunicorn.service", "644"),
    ("node_exporter.service.j2", "etc/systemd/node_exporter.service", "644"),
    ("prometheus.service.j2", "etc/systemd/prometheus.service", "644"),
    ("start.sh.j2", "etc/app/start.sh", "755"),
    ("backup.sh.j2", "etc/app/backup.sh", "755"),
    ("prometheus.yml.j2", "etc/prometheus/prometheus.yml", "644"),
]:
    files.template(name=dest, src=os.path.join(T, name), dest=f"{root}/{dest}", mode=mode, **ctx)
site = files.template(name="site", src=os.path.join(T, "site.conf.j2"), dest=f"{root}/etc/app/site.conf", mode="644", **ctx)
files.put(name="static", src=d.static_file, dest=f"{root}/etc/app/static.bin", mode="644")
server.shell(name="site changed", commands=[f"echo changed >> {root}/handler.log"], _if=site.did_change)
