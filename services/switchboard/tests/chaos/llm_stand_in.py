"""A stand-in for an OpenAI-compatible chat-completions provider, for the chaos run (the LLM provider
cannot be reached from a test machine): answers every POST with a valid parse of a ticket at once.
The run kills it with SIGKILL and restarts it on the same port, as it does nats-server.

    python3 llm_stand_in.py PORT MODEL
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = json.dumps({
    "summary": "The customer reports a problem with the service.",
    "problem_type": "service problem",
    "keywords": ["service"],
    "entities": [],
    "complexity": 2,
    "language": "en",
    "suggested_departments": [],
})


class Completions(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({
            "id": "chatcmpl-chaos",
            "object": "chat.completion",
            "model": sys.argv[2],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Completions).serve_forever()
