"""The official RocketMQ 5.x Python client (rocketmq-python-client, from PyPI) against a
ramjet broker's gRPC port: producer (normal, delayed), SimpleConsumer (receive, ack,
redelivery after the invisible duration with the attempt counted, change of invisible
duration). Run by tests/tests/grpc_official.rs as
`python official_client.py <grpc ip:port> <topic> <group>`; prints `official-client: OK`.
Every wait is bounded (60 s deadline, receive calls long-poll inside it)."""

import sys
import time

from rocketmq import (ClientConfiguration, Credentials, FilterExpression, Message,
                      Producer, SimpleConsumer)

endpoint, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]
DEADLINE = time.time() + 60


def check(cond, what):
    if not cond:
        print(f"official-client: FAIL: {what}", flush=True)
        sys.exit(1)


config = ClientConfiguration(endpoint, Credentials())
producer = Producer(config, (topic,))
producer.startup()
sent = {}
for i in range(10):
    m = Message()
    m.topic = topic
    m.body = f"py-{i}".encode()
    m.tag = "PyTag"
    m.keys = f"key-{i}"
    m.add_property("n", str(i))
    r = producer.send(m)
    sent[r.message_id] = m.body
d = Message()
d.topic = topic
d.body = b"delayed"
due_s = int(time.time()) + 2  # this client's delivery timestamps are in seconds
d.delivery_timestamp = due_s
r = producer.send(d)
sent[r.message_id] = b"delayed"
delayed_id = r.message_id

consumer = SimpleConsumer(config, group, {topic: FilterExpression()}, await_duration=5)
consumer.startup()
got = {}
while len(got) < len(sent) and time.time() < DEADLINE:
    for m in consumer.receive(32, 15):
        check(m.message_id not in got, f"{m.message_id} delivered twice")
        got[m.message_id] = m
        consumer.ack(m)
        if m.message_id == delayed_id:
            check(time.time() >= due_s, "a delayed message came early")
check(set(got) == set(sent), f"received {len(got)} of {len(sent)}")
for mid, m in got.items():
    check(m.body == sent[mid], f"body of {mid}")
    if mid != delayed_id:
        check(m.tag == "PyTag", f"tag of {mid}")
        check(m.properties.get("n") is not None, f"property of {mid}")
        check(m.delivery_attempt == 1, f"attempt of {mid}")

# Redelivery: not acked, it comes back after its invisible second with attempt 2.
m = Message()
m.topic = topic
m.body = b"again"
again_id = producer.send(m).message_id
first = None
while first is None and time.time() < DEADLINE:
    for x in consumer.receive(1, 1):
        first = x
check(first is not None and first.message_id == again_id, "the unacked message")
second = None
while second is None and time.time() < DEADLINE:
    for x in consumer.receive(1, 1):
        second = x
check(second is not None and second.message_id == again_id, "redelivered")
check(second.delivery_attempt == 2, f"attempt {second.delivery_attempt}")
# A longer invisible duration, then the ack with the renewed handle.
consumer.change_invisible_duration(second, 30)
check(consumer.receive(1, 1) == [], "invisible after the change")
consumer.ack(second)

consumer.shutdown()
producer.shutdown()
print("official-client: OK", flush=True)
