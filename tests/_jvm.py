"""Compile and drive the OkHttp clients in tests/jvm/ on Debian's JDK, OkHttp 3.13 and Kotlin.

The pinners come from ``pinset export -f okhttp`` verbatim: :func:`pinners_source`
puts each exported text in a function of its own (its ``import`` lines go to the
top of the file, where Java and Kotlin require them) and adds a ``get(name)`` that
picks one. The rest of each client is a fixed template: it reads one request per
line on stdin and answers each on stdout, so one JVM per language serves a whole
session (a JVM start, and above all ``kotlinc``, cost seconds).

Request: ``pinner<TAB>url<TAB>proxy`` (proxy ``host:port`` or empty). Answer:
``status<TAB>body`` for a response, ``exception class<TAB>message`` otherwise
(newlines in the message written as ``\\n``).
"""

from __future__ import annotations

import os
import re
import selectors
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

__all__ = [
    "CLASSPATH_JARS",
    "KOTLIN_STDLIB",
    "Answer",
    "Compilation",
    "JvmClient",
    "Language",
    "missing",
    "pinners_source",
]

Language = Literal["java", "kotlin"]
TEMPLATES = Path(__file__).resolve().parent / "jvm"
SHARE = Path("/usr/share/java")
CLASSPATH_JARS = (SHARE / "okhttp.jar", SHARE / "okio.jar")
KOTLIN_STDLIB = SHARE / "kotlin-stdlib.jar"
MAIN_CLASS: dict[Language, str] = {"java": "PinnedClient", "kotlin": "PinnedClientKt"}
_COMPILE_TIMEOUT = 300.0
_ANSWER_TIMEOUT = 30.0
_JVM_OPTION_VARIABLES = ("JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS")
# Exported names become Java/Kotlin function names.
_NAME = re.compile(r"[a-z][a-z0-9_]*")


def missing(language: Language) -> str | None:
    """Why the *language* client cannot be built here, or ``None`` if it can."""
    tools = ["javac", "java"] + (["kotlinc"] if language == "kotlin" else [])
    absent = [tool for tool in tools if shutil.which(tool) is None]
    jars = [*CLASSPATH_JARS, *([KOTLIN_STDLIB] if language == "kotlin" else [])]
    absent += [str(jar) for jar in jars if not jar.is_file()]
    if not absent:
        return None
    return (
        f"the {language} OkHttp client needs {', '.join(absent)} — "
        "apt-get install default-jdk-headless libokhttp-java libokio-java kotlin (.ci/run does)"
    )


def pinners_source(language: Language, exports: dict[str, str]) -> str:
    """A ``Pinners`` source file holding each exported pinner; ``get("none")`` pins nothing."""
    imports: dict[str, None] = {}
    bodies: list[str] = []
    for name, text in exports.items():
        if not _NAME.fullmatch(name) or name == "none":
            raise ValueError(f"pinner name {name!r} is not a plain lower-case identifier")
        lines = text.rstrip("\n").split("\n")
        imports.update(dict.fromkeys(line for line in lines if line.startswith("import ")))
        code = "\n".join(line for line in lines if not line.startswith("import ")).strip("\n")
        bodies.append(_function(language, name, code))
    if language == "java":
        cases = "".join(f'      case "{name}": return {name}();\n' for name in exports)
        head = (
            "final class Pinners {\n"
            "  static CertificatePinner get(String name) {\n"
            "    switch (name) {\n"
            f"{cases}"
            '      case "none": return CertificatePinner.DEFAULT;\n'
            '      default: throw new IllegalArgumentException("no pinner " + name);\n'
            "    }\n"
            "  }\n"
        )
    else:
        cases = "".join(f'    "{name}" -> {name}()\n' for name in exports)
        head = (
            "object Pinners {\n"
            "  fun get(name: String): CertificatePinner = when (name) {\n"
            f"{cases}"
            '    "none" -> CertificatePinner.DEFAULT\n'
            '    else -> throw IllegalArgumentException("no pinner $name")\n'
            "  }\n"
        )
    imports.setdefault(
        "import okhttp3.CertificatePinner" + (";" if language == "java" else ""), None
    )
    return "\n".join(imports) + "\n\n" + head + "\n".join(bodies) + "}\n"


def _function(language: Language, name: str, code: str) -> str:
    # The export declares `certificatePinner`; the function returns it.
    if language == "java":
        head, tail = f"static CertificatePinner {name}() {{", "return certificatePinner;"
    else:
        head, tail = f"fun {name}(): CertificatePinner {{", "return certificatePinner"
    return f"\n  {head}\n{code}\n    {tail}\n  }}\n"


class Compilation:
    """The clients of several languages compiling at once (kotlinc alone takes seconds).

    Start it early, do other set-up meanwhile, then :meth:`wait`.
    """

    def __init__(self, work: Path, exports: dict[Language, dict[str, str]]) -> None:
        classpath = os.pathsep.join(str(jar) for jar in CLASSPATH_JARS)
        self._running: dict[Language, tuple[subprocess.Popen[bytes], Path]] = {}
        self._done: dict[Language, Path] | None = None
        self._failure: str | None = None
        for language, pinners in exports.items():
            src, out = work / f"{language}-src", work / language
            src.mkdir(parents=True, exist_ok=True)
            out.mkdir(parents=True, exist_ok=True)
            if language == "java":
                client, generated = src / "PinnedClient.java", src / "Pinners.java"
                argv = ["javac", "-Xlint:all", "-Werror", "-cp", classpath, "-d", str(out)]
            else:
                client, generated = src / "PinnedClient.kt", src / "Pinners.kt"
                argv = ["kotlinc", "-Werror", "-cp", classpath, "-d", str(out)]
            shutil.copyfile(TEMPLATES / client.name, client)
            generated.write_text(pinners_source(language, pinners), encoding="utf-8")
            process = subprocess.Popen(
                [*argv, str(client), str(generated)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            self._running[language] = (process, out)

    def wait(self) -> dict[Language, Path]:
        """Each language's class directory, once its compiler is done (waits once)."""
        if self._failure is not None:
            raise RuntimeError(self._failure)
        if self._done is not None:
            return self._done
        done: dict[Language, Path] = {}
        for language, (process, out) in self._running.items():
            output, _ = process.communicate(timeout=_COMPILE_TIMEOUT)
            if process.returncode != 0:
                text = output.decode(errors="replace")
                self._failure = f"{language} compilation failed ({process.returncode}):\n{text}"
                self.kill()
                raise RuntimeError(self._failure)
            done[language] = out
        self._done = done
        return done

    def kill(self) -> None:
        """Stop compilers still running and close every pipe (at the end of the session)."""
        for process, _ in self._running.values():
            if process.poll() is None:
                process.kill()
            if process.stdout is not None and not process.stdout.closed:
                process.communicate()


@dataclass(frozen=True, slots=True)
class Answer:
    """What the JVM client got: an HTTP status, or the exception OkHttp threw."""

    status: int | None
    exception: str | None
    detail: str

    @property
    def pinning_failure(self) -> bool:
        """OkHttp's own refusal: ``SSLPeerUnverifiedException: Certificate pinning failure!``."""
        return self.exception == "javax.net.ssl.SSLPeerUnverifiedException" and (
            self.detail.startswith("Certificate pinning failure!")
        )


class JvmClient:
    """One JVM running a compiled client, trusting the PKCS#12 *trust_store* (only).

    Write the store with :func:`pinset.cli._mitm._jvm.write_truststore`, the one writer
    of Java trust stores in pinset (``pinset mitm -- java ...`` uses it too).
    """

    def __init__(self, language: Language, classes: Path, trust_store: Path, password: str) -> None:
        self.language = language
        jars = [*CLASSPATH_JARS, *([KOTLIN_STDLIB] if language == "kotlin" else [])]
        classpath = os.pathsep.join([str(classes), *(str(jar) for jar in jars)])
        self.argv = [
            "java",
            f"-Djavax.net.ssl.trustStore={trust_store}",
            "-Djavax.net.ssl.trustStoreType=PKCS12",
            f"-Djavax.net.ssl.trustStorePassword={password}",
            "-cp",
            classpath,
            MAIN_CLASS[language],
        ]
        self._process: subprocess.Popen[str] | None = None
        self._selector = selectors.DefaultSelector()

    def start(self) -> JvmClient:
        """Start the JVM; return once the client said it is ready."""
        # Options from the environment (pinset mitm sets JAVA_TOOL_OPTIONS) would change trust.
        env = {k: v for k, v in os.environ.items() if k not in _JVM_OPTION_VARIABLES}
        self._process = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            env=env,
        )
        assert self._process.stdout is not None
        self._selector.register(self._process.stdout, selectors.EVENT_READ)
        ready = self._line()
        if ready != "READY":
            raise RuntimeError(f"the {self.language} client did not start: {ready!r}")
        return self

    def _line(self) -> str:
        # select() sees only the pipe, not what readline() already buffered: this relies on
        # the client writing exactly one line per request (and READY once).
        process = self._process
        assert process is not None
        assert process.stdout is not None
        if not self._selector.select(_ANSWER_TIMEOUT):
            raise TimeoutError(f"the {self.language} client said nothing for {_ANSWER_TIMEOUT}s")
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.language} client exited ({process.poll()})")
        return line.rstrip("\n")

    def get(self, pinner: str, url: str, proxy: str | None = None) -> Answer:
        """GET *url* with the pinner called *pinner*, through *proxy* (``host:port``) if given."""
        process = self._process
        assert process is not None
        assert process.stdin is not None
        process.stdin.write(f"{pinner}\t{url}\t{proxy or ''}\n")
        process.stdin.flush()
        first, _, detail = self._line().partition("\t")
        detail = detail.replace("\\n", "\n")
        if first.isdigit():
            return Answer(int(first), None, detail)
        return Answer(None, first, detail)

    def stop(self) -> None:
        """Close the client's stdin (it exits) and wait for it."""
        process, self._process = self._process, None
        if process is None:
            return
        self._selector.close()
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> JvmClient:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
