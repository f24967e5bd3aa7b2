#!/usr/bin/python3
"""An MQTT app with a persistent session (paho-mqtt, clean_session=False): subscribes to the inbox topics
at QoS 1 on every connect, prints each message's payload on a line, and disconnects cleanly after COUNT
messages (with COUNT 0: once the subscription is acknowledged, so that the session exists).

Usage: paho-persistent.py PORT CLIENT_ID COUNT
"""
import sys
import threading

import paho.mqtt.client as mqtt

port, client_id, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
received = 0


def on_connect(client, _userdata, _flags, rc):
    if rc != 0:
        print(f"connect refused: {rc}", file=sys.stderr)
        sys.exit(2)
    client.subscribe("nearmesh/inbox/#", qos=1)


def on_subscribe(client, _userdata, _mid, _granted):
    if count == 0:
        client.disconnect()


def on_message(client, _userdata, message):
    global received
    print(message.payload.decode("utf-8", "replace"), flush=True)
    received += 1
    if received == count:
        # After this callback paho sends the PUBACK: disconnect once it has gone.
        threading.Timer(0.3, client.disconnect).start()


client = mqtt.Client(client_id=client_id, clean_session=False, protocol=mqtt.MQTTv311)
client.on_connect = on_connect
client.on_subscribe = on_subscribe
client.on_message = on_message
client.connect("127.0.0.1", port, keepalive=30)
client.loop_forever()
