/**
 * The reference receiver for the intake bench: a bare node:dgram socket whose 'message' handler only
 * counts, with the same receive buffer request as the subscription server (8 MiB). Run as a child with
 * an IPC channel by intake.ts: sends {port} once bound, answers 'count' with {received} and 'cpu' with
 * process.cpuUsage().
 */
import { createSocket } from 'node:dgram';

const socket = createSocket({ type: 'udp4', recvBufferSize: 8 * 1024 * 1024 });
let received = 0;
socket.on('message', () => {
  received++;
});
socket.bind(0, '127.0.0.1', () => {
  process.send?.({ command: 'bound', port: socket.address().port, recvBuffer: socket.getRecvBufferSize() });
});
process.on('message', (command) => {
  if (command === 'count') process.send?.({ command, received });
  if (command === 'cpu') process.send?.({ command, cpu: process.cpuUsage() });
});
process.channel?.unref();
