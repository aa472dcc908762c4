"""The texts of the disaster-recovery kit: README.md and the pinset.toml snippet.

They name the kit's own files and pins, so the commands in them can be run as they
stand from inside the kit directory. The ``pinset bundle`` command lines are those of
issue 11 (signed pin-set bundles).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pinset.chain._kit import RecoveryKit

__all__ = ["policy_snippet", "readme"]


def policy_snippet(kit: RecoveryKit) -> str:
    """A ``[[domain]]`` per name with the backup pins, the live key's pin left to add.

    The snippet loads as a policy, but must not be shipped as it stands: it would pin
    only keys no server uses yet. The comment line in ``pins`` says which pin to add.
    """
    lines = [
        f"# Backup pins of the disaster-recovery kit made on {kit.made} (pinset keygen --kit).",
        "# Add the backup pins to the pins of each [[domain]] of pinset.toml that these keys",
        "# may serve, NEXT TO the pin of the key the server uses now: with the backup pins",
        "# alone, every client would refuse the server until it switches to a backup key.",
    ]
    for name in kit.names:
        host = name.removeprefix("*.")
        lines += ["", "[[domain]]", f'name = "{host}"']
        if name.startswith("*."):
            lines.append("include-subdomains = true")
        lines += [
            "pins = [",
            f'  # "sha256/...",  # the key {host} uses now: pinset pin {host}',
        ]
        lines += [f'  "{k.pin}",  # {k.key} ({k.key_type}), offline backup' for k in kit.backups]
        lines.append("]")
    return "\n".join(lines) + "\n"


def readme(kit: RecoveryKit) -> str:
    """README.md: what each file is, where it is kept, and the commands for an emergency."""
    hosts = [name for name in kit.names if not name.startswith("*.")]
    first = hosts[0] if hosts else kit.names[0].removeprefix("*.")
    return "\n".join(
        (_keeping(kit), _preparing(kit, hosts or [first]), _emergency(kit, first), _spare(kit))
    )


def _keeping(kit: RecoveryKit) -> str:
    rows = [
        f"| `{f.name}` | {'**offline**' if f.secret else 'shareable'} | {f.description} |"
        for f in kit.files
    ]
    rows.append("| `README.md` | shareable | this file |")
    pins = [f"| `{k.key}` | {k.role} | {k.key_type} | `{k.pin}` |" for k in kit.keys]
    return f"""\
# Disaster-recovery kit for {", ".join(kit.names)}

Made on {kit.made} by `pinset keygen --kit`. It holds what you need on the day the key
your servers use is lost or stolen, or a pin change locks your users out: backup keys
whose pins your apps already carry, a CSR for each so that a CA can certify it, and the
key that signs pin-set bundles (pin updates, and the kill switch that turns pinning off).

## Where each file is kept

The private keys (`*.key`) are encrypted with the password you gave `pinset keygen`.
That password is not in the kit: keep it apart from it (a password manager the on-call
team can reach, a sealed envelope), or the encryption protects nothing.

| file | keep | what it is |
|---|---|---|
{chr(10).join(rows)}

- **Offline files** (the `*.key` files) live on an encrypted USB stick or two, in
  different safes: never on a server, in a laptop's synced folder, a CI system or a
  repository. A backup key leaves the safe only on the day it is deployed (then it is
  a live key, and you make a new backup). Whoever holds `signing.key` and its password
  can change the pins of every app that trusts `signing.pub`, and switch them off.
- **Shareable files** may be copied anywhere: the public keys, CSRs and pins go into
  policies, apps and tickets. `signing.pub` is built into every app that takes signed
  pin updates.
- Keep a copy of this README with the on-call runbook, where it can be found without
  the kit.

## Pins

| key | role | type | pin |
|---|---|---|---|
{chr(10).join(pins)}

`pins.txt` lists them one a line; `pinset-snippet.toml` has the backup pins as
`pinset.toml` lines. Check any of them against the files at any time:

```sh
pinset pin {" ".join(k.public_key for k in kit.keys)}
```

"""


def _preparing(kit: RecoveryKit, hosts: list[str]) -> str:
    backup = kit.backups[0]
    backup_keys = " ".join(f"--backup-key {k.public_key}" for k in kit.backups)
    return f"""\
## Now, before you need it

1. Put the backup pins into the policy of every app, next to the pin of the live key.
   A new policy, from the live server plus these backups:

   ```sh
   pinset init {" ".join(hosts)} {backup_keys} --expires-in 90
   ```

   An existing policy: add the pins from `pinset-snippet.toml` to each domain, then

   ```sh
   pinset audit pinset.toml
   pinset rotate check pinset.toml --new-key {backup.csr}
   ```

   `rotate check` must say `safe` for every domain: a server may then switch to
   `{backup.key}` without locking anyone out.
2. Build `signing.pub` into the apps as the trusted key of their pin updates
   (`pinset.updates.UpdateSource(url, trusted_keys=["signing.pub"])` in Python).
3. Ship, and wait until the apps that carry the backup pins are the ones in use.
4. Move the kit offline (see above); no `*.key` file may stay on this machine.

"""


def _emergency(kit: RecoveryKit, first: str) -> str:
    backup = kit.backups[0]
    return f"""\
## In an emergency

Run these from a copy of the kit directory on a trusted machine.

### The server's key is lost or compromised: deploy a backup key

1. Confirm that what is shipped accepts the backup key (a policy, or the released
   `app-release.apk` and `App.ipa` in its place):

   ```sh
   pinset rotate check pinset.toml --new-key {backup.csr}
   ```

2. Have your CA issue a certificate for `{backup.csr}` (it names
   {", ".join(kit.names)}; an ACME client takes it as it is, e.g.
   `certbot certonly --csr {backup.csr}`). Check the certificate before installing it:

   ```sh
   pinset rotate check pinset.toml --new-cert {backup.label}.crt --chain-file intermediates.pem
   ```

3. Decrypt the key for the server (asks for the kit's password; the server's copy is
   the only unencrypted one) and install it with the certificate:

   ```sh
   (umask 077 && openssl pkey -in {backup.key} -out server.key)
   ```

4. Reload the server, then verify from outside that clients accept it:

   ```sh
   pinset audit pinset.toml --live
   pinset check {first} --policy pinset.toml
   ```

5. If the old key was compromised, its pin must go: remove it from the policy and ship
   an app update without it. Then make a new kit (`pinset keygen --kit DIR --cn {first}`)
   and ship its backup pins, so that unused backups remain.

### Change the pins without an app release: sign a bundle

Edit `pinset.toml` (add a pin, move the expiration later, or `enforce = false` for
report-only), then sign it with a version greater than that of every bundle signed
before, and verify it as the apps will before you publish it:

```sh
pinset bundle sign pinset.toml --key signing.key --version N --expires-in 30 -o bundle.json
pinset bundle verify bundle.json --trusted-key signing.pub --policy pinset.toml
```

### Users are locked out: the kill switch

A bundle that disables pinning for a domain restores service to every app that trusts
`signing.pub`; the apps report that the fallback is in use. Keep its lifetime short and
replace it with a bundle that pins again once the servers are fixed:

```sh
pinset bundle sign pinset.toml --key signing.key --version N --expires-in 7 \\
    --disable {first} -o bundle.json
pinset bundle verify bundle.json --trusted-key signing.pub --policy pinset.toml
pinset audit pinset.toml --live
```

### `signing.key` is compromised

Whoever has it can sign bundles until the apps stop trusting `signing.pub`. A bundle
cannot replace the trusted signing keys unless the app's embedded policy allows it:
ship an app update with a new signing key (`pinset keygen --type ed25519 --out
signing-2.key --public-out signing-2.pub`), and make a new kit.

### Afterwards
"""


def _spare(kit: RecoveryKit) -> str:
    """The last paragraph: what is left of the kit after a backup key is deployed."""
    spares = [k.key for k in kit.backups[1:]]
    if not spares:
        return (
            "A deployed backup key is now the live key. No spare is left: make a new kit now"
            " (`pinset keygen --kit DIR --cn ...`) and ship its pins."
        )
    return (
        "A deployed backup key is now the live key. "
        f"{' and '.join(f'`{s}`' for s in spares)} remain{'s' if len(spares) == 1 else ''}:"
        " make a new kit (`pinset keygen --kit DIR --cn ...`) and ship its pins before"
        " the next emergency."
    )
