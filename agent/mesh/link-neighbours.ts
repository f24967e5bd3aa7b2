// The mesh sees each direct link as a neighbour: the router learns of links as they come and go, and gets
// every routed message a neighbour hands over. The links know nothing of the router.
import type { LinkManager } from '../links/link-manager.js';
import type { Router } from './router.js';

/**
 * Attach before anything else listens to `links`: whoever hears 'peer-down' next (the messenger, streams)
 * asks the router whether the peer is still reachable, and must get the answer without that link.
 */
export function routeOverLinks(router: Router, links: LinkManager): void {
  links.on('peer-up', (peer) =>
    router.addNeighbour({
      peerId: peer.id,
      send: (message, relayed) => links.sendRouted(peer.id, message, relayed),
      sendSync: (message) => links.sendSync(peer.id, message),
    }),
  );
  links.on('peer-down', (peer) => router.removeNeighbour(peer.id));
  links.on('routed', (neighbour, message) => router.receive(neighbour, message));
  links.on('sync', (neighbour, message) => router.receiveSync(neighbour, message));
}
