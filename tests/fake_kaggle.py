"""A fake Kaggle API on 127.0.0.1 for tests: it records every request the client sends.

The `kaggle` client, with `KAGGLE_API_ENVIRONMENT=LOCALHOST` set before `import kaggle`, posts
JSON to `<endpoint>/api/v1/<service>/<method>`; medalist points that endpoint here through
`MEDALIST_KAGGLE_ENDPOINT`. Blob uploads are PUTs to the `createUrl` this server hands out;
kernel output files are GETs of the URLs it lists. A competition's data (`DownloadDataFiles`)
is a redirect to a signed URL of its zip, as Kaggle's storage serves it. `refuse` makes a
method answer with an error the way Kaggle does: that HTTP status and a JSON body
`{"code": ..., "message": ...}`.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Call:
    method: str  # the API method, e.g. "CreateSubmission", or "PUT" for an upload
    body: Any
    user: str | None  # the user name of the Basic auth header
    headers: dict[str, str]


@dataclass
class FakeKaggle:
    """A running fake server; use as a context manager."""

    existing_datasets: set[str] = field(default_factory=set)
    refuse: dict[str, tuple[int, str]] = field(default_factory=dict)
    kernel_status: str = "COMPLETE"
    output_files: dict[str, bytes] = field(
        default_factory=lambda: {"submission.csv": b"id,label\nt_000,dot\n"}
    )
    competition_zips: dict[str, bytes] = field(default_factory=dict)  # slug -> its data zip
    submissions: list[dict[str, Any]] = field(default_factory=list)
    leaderboard: list[dict[str, Any]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)
    blob_names: dict[str, str] = field(default_factory=dict)

    def __enter__(self) -> FakeKaggle:
        handler = type("Handler", (_Handler,), {"fake": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def env(self) -> dict[str, str]:
        """What a client process needs to talk to this server."""
        return {"KAGGLE_API_ENVIRONMENT": "LOCALHOST", "MEDALIST_KAGGLE_ENDPOINT": self.url}

    def named(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    # ---- answers ----------------------------------------------------------------------------
    def answer(self, method: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if method in self.refuse:
            code, message = self.refuse[method]
            return code, {"code": code, "message": message}
        n = len(self.calls)
        if method == "GetDatasetStatus":
            ref = f"{body.get('ownerSlug')}/{body.get('datasetSlug')}"
            if ref in self.existing_datasets:
                return 200, {"status": "READY"}
            return 404, {"code": 404, "message": f"Dataset {ref} not found"}
        if method in ("StartBlobUpload", "StartSubmissionUpload"):
            token = f"token-{n}"
            self.blob_names[token] = body.get("name") or body.get("fileName") or ""
            return 200, {"token": token, "createUrl": f"{self.url}/upload/{token}"}
        if method in ("CreateDataset", "CreateDatasetVersion"):
            ref = f"{body.get('ownerSlug')}/{body.get('slug') or body.get('datasetSlug')}"
            self.existing_datasets.add(ref)
            return 200, {"ref": ref, "url": f"{self.url}/datasets/{ref}", "status": "Ok"}
        if method == "SaveKernel":
            return 200, {
                "ref": f"/code/{body.get('slug')}",
                "url": f"{self.url}/code/x",
                "versionNumber": 3,
            }
        if method == "GetKernelSessionStatus":
            failure = "CellExecutionError" if self.kernel_status == "ERROR" else ""
            return 200, {"status": self.kernel_status, "failureMessage": failure}
        if method == "ListKernelSessionOutput":
            files = [
                {"url": f"{self.url}/files/{name}", "fileName": name} for name in self.output_files
            ]
            return 200, {"files": files, "log": "[]"}
        if method == "DownloadDataFiles":
            slug = body.get("competitionName")
            if slug in self.competition_zips:
                return 302, {"Location": f"{self.url}/storage/{slug}.zip?GoogleAccessId=x&sig=y"}
            return 404, {"code": 404, "message": f"Competition {slug} not found"}
        if method == "CreateSubmission":
            return 200, {"message": "Successfully submitted", "ref": 101}
        if method == "CreateCodeSubmission":
            return 200, {"message": "Your notebook will run on the hidden test set", "ref": 102}
        if method == "ListSubmissions":
            return 200, {"submissions": self.submissions}
        if method == "GetLeaderboard":
            return 200, {"submissions": self.leaderboard}
        return 404, {"code": 404, "message": f"fake Kaggle has no method {method}"}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeKaggle

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass

    def _user(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return None
        return base64.b64decode(auth[6:]).decode().split(":", 1)[0]

    def _send(self, code: int, payload: dict[str, Any] | bytes) -> None:
        if code == 302:  # a redirect: the payload holds the Location header
            self.send_response(code)
            self.send_header("Location", payload["Location"])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(code)
        ctype = "application/octet-stream" if isinstance(payload, bytes) else "application/json"
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                chunk = self.rfile.read(size + 2)[:size]
                if not size:
                    return data
                data += chunk
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self) -> None:
        method = self.path.rstrip("/").rsplit("/", 1)[-1]
        raw = self._read()
        body = json.loads(raw) if raw else {}
        code, payload = self.fake.answer(method, body)
        self.fake.calls.append(Call(method, body, self._user(), dict(self.headers)))
        self._send(code, payload)

    def do_PUT(self) -> None:
        token = self.path.rsplit("/", 1)[-1]
        data = self._read()
        self.fake.uploads[self.fake.blob_names.get(token, token)] = data
        self.fake.calls.append(Call("PUT", token, self._user(), dict(self.headers)))
        self._send(200, {})

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        name = path.rsplit("/", 1)[-1]
        zips = {f"{slug}.zip": data for slug, data in self.fake.competition_zips.items()}
        if path.startswith("/storage/") and name in zips:
            self.fake.calls.append(Call("GET", path, self._user(), dict(self.headers)))
            self._send(200, zips[name])
        elif name in self.fake.output_files:
            self._send(200, self.fake.output_files[name])
        else:
            self._send(404, {"code": 404, "message": "no such file"})
