"""A local PROTOCOL STAND-IN for an OpenAI-compatible server, for what no open server here does: the
images API (images/generations and images/edits, as OpenAI publishes them: JSON in, `b64_json` out,
multipart uploads for edits) and every fault a real server can answer with (its error shapes:
`{"error": {"message", "type", "param", "code"}}`, status codes, Retry-After headers, stalls, garbage).

It is not a model: texts are made up from the request, pictures are flat colours. The real text server
of the tests is `transformers serve` (tests/test_remote_story.py). The model name picks the behaviour:

  echo            chat/completions and completions: the reply repeats the prompt, word by word when streamed
  slow            a stream that trickles one word every 20 ms for a long while (Ctrl-C tests); it notes
                  when the client hangs up
  dall-e-2/-3     OpenAI's image models with their published rules (sizes, n, quality, style, edits)
  gpt-image-1     always base64 and refuses `response_format`, as OpenAI's does
  fault-401 fault-403 fault-500 fault-502 fault-429 (always) fault-429-twice (then fine) fault-quota
  fault-garbage (200, not JSON) fault-nochoices (JSON without choices) fault-badstream (SSE of garbage)
  fault-stall (answers nothing for `stall_s`) fault-echo-key (a 400 whose message repeats the key)
  any other name  404 model_not_found, as OpenAI answers an unknown model
"""

import base64
import io
import json
import threading
import time
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TEXT_MODELS = ("echo", "slow")
IMAGE_MODELS = ("dall-e-2", "dall-e-3", "gpt-image-1")
FAULTS = (
    "fault-401", "fault-403", "fault-500", "fault-502", "fault-429", "fault-429-twice", "fault-quota",
    "fault-garbage", "fault-nochoices", "fault-badstream", "fault-stall", "fault-echo-key",
)
SIZES = {
    "dall-e-2": ("256x256", "512x512", "1024x1024"),
    "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
    "gpt-image-1": ("1024x1024", "1536x1024", "1024x1536", "auto"),
}
DEFAULT_SIZE = {"dall-e-2": "1024x1024", "dall-e-3": "1024x1024", "gpt-image-1": "1024x1024"}
COLOURS = [(200, 40, 40), (40, 160, 60), (40, 60, 200), (220, 180, 40)]


def error_body(message, kind="invalid_request_error", param=None, code=None):
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def png_of(size, colour, small=True):
    """A flat-colour PNG; `small` answers big sizes with a 64-px-per-1024 picture of the same shape
    (the protocol is what is tested, not the pixels)."""
    from PIL import Image

    width, height = (int(v) for v in size.split("x"))
    if small:
        width, height = max(8, width // 16), max(8, height // 16)
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


class StandIn(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, key=None, edits=True, small_images=False):
        super().__init__(("127.0.0.1", 0), Handler)
        self.key = key  # the key a request must carry (Authorization: Bearer KEY); None: any
        self.edits = edits  # whether /v1/images/edits exists on this server
        self.small_images = small_images
        self.requests = []  # (path, body as JSON, or {field: (filename, bytes) or text} for multipart)
        self.counts = {}  # model -> requests seen
        self.hung_up = threading.Event()  # a streaming client closed the connection early
        self.stall_s = 30.0
        self.release = threading.Event()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.release.set()
        self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: StandIn

    def log_message(self, *args):
        pass

    # -- plumbing ------------------------------------------------------------------------------

    def _send(self, status, body, headers=None, kind="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _read(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        kind = self.headers.get("Content-Type", "")
        if kind.startswith("multipart/form-data"):
            message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + kind.encode() + b"\r\n\r\n" + raw)
            fields = {}
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                fields[name] = (part.get_filename(), payload) if part.get_filename() else payload.decode()
            return fields
        return json.loads(raw or b"{}")

    def _key_ok(self):
        if self.server.key is None:
            return True
        given = self.headers.get("Authorization", "")
        if given == f"Bearer {self.server.key}":
            return True
        shown = given.removeprefix("Bearer ")
        self._send(401, error_body(f"Incorrect API key provided: {shown}.", code="invalid_api_key"))
        return False

    # -- routes --------------------------------------------------------------------------------

    def do_GET(self):
        if self.path == "/v1/models":
            if not self._key_ok():
                return
            models = TEXT_MODELS + IMAGE_MODELS + FAULTS
            self._send(200, {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "stand-in"} for m in models]})
        else:
            self._send(404, error_body(f"Unknown request URL: GET {self.path}.", code="unknown_url"))

    def do_POST(self):
        routes = {
            "/v1/chat/completions": self._text,
            "/v1/completions": self._text,
            "/v1/images/generations": self._generate,
        }
        if self.server.edits:
            routes["/v1/images/edits"] = self._edit
        handler = routes.get(self.path)
        body = self._read()
        self.server.requests.append((self.path, body))
        if handler is None:
            self._send(404, error_body(f"Unknown request URL: POST {self.path}.", code="unknown_url"))
            return
        if not self._key_ok():
            return
        model = body.get("model")
        self.server.counts[model] = self.server.counts.get(model, 0) + 1
        if isinstance(model, str) and model.startswith("fault-") and self._fault(model):
            return
        handler(body, model)

    def _fault(self, model):
        """Answer with the fault `model` names; False when it lets the request through."""
        count = self.server.counts[model]
        if model == "fault-401":
            self._send(401, error_body("Incorrect API key provided: sk-abc***xyz.", code="invalid_api_key"))
        elif model == "fault-403":
            self._send(403, error_body("You are not allowed to sample from this model", kind="permission_error"))
        elif model in ("fault-500", "fault-502"):
            self._send(int(model[-3:]), error_body("The server had an error while processing your request.", kind="server_error"))
        elif model == "fault-429" or (model == "fault-429-twice" and count <= 2):
            self._send(429, error_body("Rate limit reached for requests", kind="requests", code="rate_limit_exceeded"),
                       headers={"retry-after-ms": "5"})
        elif model == "fault-quota":
            self._send(429, error_body("You exceeded your current quota, please check your plan and billing details.",
                                       kind="insufficient_quota", code="insufficient_quota"))
        elif model == "fault-garbage":
            self._send(200, b"<html>this is not the API</html>", kind="text/html")
        elif model == "fault-nochoices":
            self._send(200, {"id": "x", "object": "chat.completion", "created": 0, "model": model})
        elif model == "fault-badstream":
            data = b"data: {not json at all\n\n"
            self._send(200, data, kind="text/event-stream")
        elif model == "fault-stall":
            self.server.release.wait(self.server.stall_s)
            try:
                self._send(200, {"choices": []})
            except OSError:
                pass
        elif model == "fault-echo-key":
            self._send(400, error_body(f"Bad request from {self.headers.get('Authorization', '')}", param="model"))
        else:
            return False
        return True

    # -- text ----------------------------------------------------------------------------------

    def _text(self, body, model):
        if model not in TEXT_MODELS and not str(model).startswith("fault-"):
            self._send(404, error_body(f"The model `{model}` does not exist or you do not have access to it.", code="model_not_found"))
            return
        chat = self.path.endswith("chat/completions")
        if chat:
            prompt = " ".join(m.get("content", "") for m in body.get("messages", []))
        else:
            prompt = body.get("prompt", "")
        n = int(body.get("n") or 1)
        words = [f"{w}" for w in f"you said {prompt}".split()]
        limit = int(body.get("max_tokens") or 16)
        if model == "slow":
            words = [f"w{i}" for i in range(2000)]
        texts = [" ".join(words[:limit]) + (f" #{i}" if n > 1 else "") for i in range(n)]
        if not body.get("stream"):
            kind = "chat.completion" if chat else "text_completion"
            choices = [
                {"index": i, "finish_reason": "length", **({"message": {"role": "assistant", "content": t}} if chat else {"text": t})}
                for i, t in enumerate(texts)
            ]
            self._send(200, {"id": "standin", "object": kind, "created": 0, "model": model, "choices": choices})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        kind = "chat.completion.chunk" if chat else "text_completion"
        try:
            pieces = [(i, (" " if j else "") + word) for i, t in enumerate(texts) for j, word in enumerate(t.split(" "))]
            for index, piece in pieces:
                choice = {"index": index, "finish_reason": None, **({"delta": {"content": piece}} if chat else {"text": piece})}
                chunk = {"id": "standin", "object": kind, "created": 0, "model": model, "choices": [choice]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                if model == "slow":
                    time.sleep(0.02)
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except OSError:  # the client hung up (Ctrl-C on its side)
            self.server.hung_up.set()
        self.close_connection = True

    # -- images --------------------------------------------------------------------------------

    def _image_rules(self, body, model, editing):
        """OpenAI's published rules per model, as 400s with its error shape; None when the request is fine."""
        if model not in IMAGE_MODELS:
            return 404, error_body(f"The model `{model}` does not exist or you do not have access to it.", code="model_not_found")
        n = int(body.get("n") or 1)
        size = body.get("size") or DEFAULT_SIZE[model]
        if size not in SIZES[model]:
            return 400, error_body(f"'{size}' is not one of {list(SIZES[model])} - 'size'", param="size")
        if model == "dall-e-3" and n != 1:
            return 400, error_body("Invalid 'n': integer above maximum value. Expected a value <= 1, but got %d instead." % n, param="n")
        if model == "dall-e-3" and editing:
            return 400, error_body("Image editing is not supported for dall-e-3.", param="model")
        quality, style = body.get("quality"), body.get("style")
        allowed = {"dall-e-2": ("standard",), "dall-e-3": ("standard", "hd"), "gpt-image-1": ("low", "medium", "high", "auto")}[model]
        if quality is not None and quality not in allowed:
            return 400, error_body(f"Invalid value: '{quality}'. Supported values are: {allowed}.", param="quality")
        if style is not None and model != "dall-e-3":
            return 400, error_body("Unknown parameter: 'style'.", param="style")
        if model == "gpt-image-1" and body.get("response_format") is not None:
            return 400, error_body("Unknown parameter: 'response_format'.", param="response_format")
        return None

    def _images(self, body, model, revise):
        n = int(body.get("n") or 1)
        size = body.get("size") or DEFAULT_SIZE[model]
        size = "1024x1024" if size == "auto" else size
        data = []
        for i in range(n):
            item = {"b64_json": base64.b64encode(png_of(size, COLOURS[i % len(COLOURS)], self.server.small_images)).decode()}
            if revise:
                item["revised_prompt"] = f"A detailed picture of {body.get('prompt')}"
            data.append(item)
        self._send(200, {"created": 0, "data": data})

    def _generate(self, body, model):
        refused = self._image_rules(body, model, editing=False)
        if refused:
            self._send(*refused)
            return
        self._images(body, model, revise=model == "dall-e-3")

    def _edit(self, body, model):
        refused = self._image_rules(body, model, editing=True)
        if refused:
            self._send(*refused)
            return
        image = body.get("image")
        if not isinstance(image, tuple) or not image[1].startswith(b"\x89PNG"):
            self._send(400, error_body("Invalid input image - format must be in ['RGBA', 'LA', 'L'], got RGB.", param="image"))
            return
        self._images(body, model, revise=False)
