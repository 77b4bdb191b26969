import { mountDevicePage } from './device-page.js';
import { mountFleetPage } from './fleet-page.js';

/**
 * Two pages, routed by the URL hash (#/ and #/devices/ID), so the server serves one file for both and a
 * device link survives a reload.
 */
const root = document.getElementById('app') as HTMLElement;
let unmount: () => void = () => undefined;

function route(): void {
  unmount();
  root.replaceChildren();
  const m = /^#\/devices\/(.+)$/.exec(location.hash);
  const deviceId = m ? decodeURIComponent(m[1] as string) : undefined;
  document.title = deviceId === undefined ? 'fleetlog · fleet' : `fleetlog · ${deviceId}`;
  unmount = deviceId === undefined ? mountFleetPage(root) : mountDevicePage(root, deviceId);
  // Moving focus to the new page's heading tells keyboard and screen-reader users the page changed.
  root.querySelector<HTMLElement>('h1')?.focus({ preventScroll: true });
}

window.addEventListener('hashchange', route);
route();
