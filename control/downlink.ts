/**
 * How the command side reaches devices: through the embedded Aedes broker (aedes-downlink.ts) or through an
 * external MQTT broker as a client (mqtt-downlink.ts). Types only.
 */

/** What a device is sent on `devices/{id}/desired`, retained. */
export interface DesiredDocument {
  version: number;
  state: Record<string, unknown>;
}

/** What a device is sent on `devices/{id}/commands/{name}`. */
export interface CommandMessage {
  id: string;
  params: Record<string, unknown>;
  /** Epoch ms; a device may ignore a command past it (the server records it expired then). */
  expiresAt: number;
}

/** A device that can now receive commands: it subscribed (embedded broker) or said `online` (external broker). */
export interface DeviceReady {
  deviceId: string;
  /** This connection of the device: a new one is sent every open command again. */
  connection: object;
  /** Whether this connection is subscribed to `topic`, as far as the downlink can tell. */
  covers(topic: string): boolean;
}

export interface Downlink {
  /** Publishes the whole desired document, retained, QoS 1. Resolves once the broker has taken it. */
  publishDesired(deviceId: string, document: DesiredDocument): Promise<void>;
  /** Publishes a command, QoS 1, not retained. Resolves once the broker has taken it. */
  publishCommand(deviceId: string, name: string, message: CommandMessage): Promise<void>;
  /** The device's connection that is subscribed to `topic` now, if any. */
  connectionFor(deviceId: string, topic: string): object | undefined;
  onReady(listener: (ready: DeviceReady) => void): void;
  /**
   * The device acknowledged a command's PUBLISH (its PUBACK). Only the embedded broker can tell; an external
   * broker reports no per-subscriber acknowledgement (`reportsDelivery` false): there the reply is the proof.
   */
  onDelivered(listener: (deviceId: string, commandId: string, clientId: string) => void): void;
  readonly reportsDelivery: boolean;
  close(): Promise<void>;
}
