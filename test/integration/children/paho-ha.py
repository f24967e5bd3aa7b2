#!/usr/bin/python3
"""An MQTT 5 app as Home Assistant is one (paho-mqtt): subscribes to one sensor's topic exactly, at QoS 2
with a subscription identifier, and to a topic of its own, to which it publishes at QoS 2. Prints a JSON
line per message (topic, value or payload, QoS, subscription identifiers) and disconnects once it has
COUNT distinct sensor values and its own message back.

Usage: paho-ha.py PORT SENSOR_TOPIC COUNT
"""
import json
import sys

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

port, sensor_topic, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
OWN_TOPIC = "ha/echo"
values = set()
echoed = False


def on_connect(client, _userdata, _flags, rc, _properties=None):
    if rc != 0:
        print(f"connect refused: {rc}", file=sys.stderr)
        sys.exit(2)
    with_id = Properties(PacketTypes.SUBSCRIBE)
    with_id.SubscriptionIdentifier = 9
    client.subscribe(sensor_topic, options=SubscribeOptions(qos=2), properties=with_id)
    client.subscribe(OWN_TOPIC, options=SubscribeOptions(qos=2))


def on_subscribe(client, _userdata, mid, _granted, _properties=None):
    if mid == 2:  # both subscriptions are in place
        client.publish(OWN_TOPIC, b"exactly once", qos=2)


def on_message(client, _userdata, message):
    global echoed
    ids = getattr(message.properties, "SubscriptionIdentifier", None)
    if message.topic == OWN_TOPIC:
        echoed = True
        line = {"topic": message.topic, "payload": message.payload.decode(), "qos": message.qos}
    else:
        value = json.loads(message.payload)["value"]
        values.add(value)
        line = {"topic": message.topic, "value": value, "qos": message.qos, "ids": ids}
    print(json.dumps(line), flush=True)
    if echoed and len(values) >= count:
        client.disconnect()


client = mqtt.Client(client_id="ha-like", protocol=mqtt.MQTTv5)
client.on_connect = on_connect
client.on_subscribe = on_subscribe
client.on_message = on_message
client.connect("127.0.0.1", port, keepalive=60)
client.loop_forever()
