"""A real Docker registry and client for the cloud e2e tests (test_gar.py, test_acr.py): Debian's
`docker-registry` (distribution 2.8) with `auth.token` pointing at a stand-in's token realm,
an OCI image built offline with `umoci`, and `skopeo` with explicit `--src-creds` /
`--dest-creds` (the username/password the broker handed out, exactly as a CLI would use them).
Same tools as test_registry_token.py; all from `scripts/setup.sh test`."""
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request

TOOLS = ("docker-registry", "skopeo", "umoci")


def tools_missing():
    return not all(shutil.which(t) for t in TOOLS)


def run(*cmd, stdin=None, check=True):
    result = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=180)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd[:3]}…: {result.stderr[-2000:]}")
    return result


class DockerRegistry:
    """docker-registry on 127.0.0.1:`port` trusting tokens from `issuer` signed by the key of
    `cert_pem` (the stand-in's; the tokens carry it in `x5c`)."""

    def __init__(self, folder, port, realm, service, issuer, cert_pem, log_path):
        self.host = f"127.0.0.1:{port}"
        cert = folder / "token-signer.crt"
        cert.write_text(cert_pem)
        config = folder / "registry.yml"
        config.write_text(json.dumps({  # JSON is YAML
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(folder / "data")}},
            "http": {"addr": self.host, "secret": os.urandom(16).hex()},
            "auth": {"token": {"realm": realm, "service": service, "issuer": issuer,
                               "rootcertbundle": str(cert)}},
        }))
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 30
        while time.time() < deadline:  # /v2/ answers 401 (token auth) once it is up
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2)
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"docker-registry did not start: {log_path}")

    def stop(self):
        os.killpg(self.proc.pid, 9)
        self.proc.wait()
        self.log.close()


def oci_image(folder):
    """An OCI layout at `folder/oci` with tag v1: one layer with a random file, so every run
    pushes new blobs."""
    image = folder / "oci"
    run("umoci", "init", "--layout", str(image))
    run("umoci", "new", "--image", f"{image}:v1")
    run("umoci", "unpack", "--rootless", "--image", f"{image}:v1", str(folder / "bundle"))
    (folder / "bundle" / "rootfs" / "hello.txt").write_text(f"hello from {os.urandom(8).hex()}\n")
    run("umoci", "repack", "--image", f"{image}:v1", str(folder / "bundle"))
    return image


def creds_arg(creds):
    return f"{creds['username']}:{creds['password']}"


def push(image, registry, repository, tag, creds, check=True):
    """skopeo copy oci:image:v1 → docker://registry/repository:tag with --dest-creds."""
    return run("skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", creds_arg(creds),
               f"oci:{image}:v1", f"docker://{registry}/{repository}:{tag}", check=check)


def pull(registry, repository, tag, creds, dest, check=True):
    return run("skopeo", "copy", "--src-tls-verify=false", "--src-creds", creds_arg(creds),
               f"docker://{registry}/{repository}:{tag}", f"oci:{dest}:{tag}", check=check)


def inspect_raw(ref, creds=None):
    args = ["skopeo", "inspect", "--raw"]
    if ref.startswith("docker://"):
        args += ["--tls-verify=false", "--creds", creds_arg(creds)]
    return run(*args, ref).stdout


def refused(result):
    """A push/pull the registry refused (not some other failure)."""
    text = result.stderr.lower()
    return result.returncode != 0 and ("unauthorized" in text or "denied" in text)
