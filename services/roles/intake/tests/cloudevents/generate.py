# Writes binary.json and structured.json here: one event as the CloudEvents Python SDK (cloudevents 2.2.0,
# `pip install cloudevents==2.2.0`) encodes it for HTTP in each content mode, headers and body. Intake's
# tests post both and expect one ticket. Run: python3 generate.py
import json
from datetime import datetime, timezone
from pathlib import Path

from cloudevents.core.bindings import http
from cloudevents.core.v1.event import CloudEvent

event = CloudEvent(
    attributes={
        # A space and a non-ASCII letter, so the binary mode's percent-encoding is exercised.
        "id": "evt-42 / résumé",
        "source": "https://connectors.example/wecom",
        "type": "com.example.ticket.created",
        "time": datetime(2026, 12, 1, 10, 30, tzinfo=timezone.utc),
        "datacontenttype": "application/json",
        "channel": "wecom",
    },
    data={"text": "宽带断网三天了，电话 13812345678", "customer_id": "c-9"},
)
here = Path(__file__).parent
for mode, encode in [("binary", http.to_binary_event), ("structured", http.to_structured_event)]:
    message = encode(event)
    with open(here / f"{mode}.json", "w") as out:
        json.dump({"headers": dict(message.headers), "body": message.body.decode()}, out, ensure_ascii=False, indent=1)
        out.write("\n")
