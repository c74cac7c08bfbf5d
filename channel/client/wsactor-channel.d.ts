// Type declarations of wsactor-channel.js, the browser client of wsactor's
// channels protocol, version 1 (docs/channels-protocol.md).

/** The WebSocket subprotocol of the JSON encoding, offered by default: "wsactor.channel.v1.json". */
export declare const SUBPROTOCOL: 'wsactor.channel.v1.json';

/** The WebSocket subprotocol of the binary encoding, offered with {encoding: 'binary'}: "wsactor.channel.v1.bin". */
export declare const SUBPROTOCOL_BINARY: 'wsactor.channel.v1.bin';

/** Any JSON value. */
export type JSONValue = null | boolean | number | string | JSONValue[] | { [key: string]: JSONValue };

/** What the client sends as a bytes payload: a Uint8Array, an ArrayBuffer, or any view of one (typed array, DataView, Buffer). */
export type BytesInput = Uint8Array | ArrayBuffer | ArrayBufferView;

/**
 * A payload as the application receives it (events, history, replies,
 * server pushes): the parsed JSON value, or a Uint8Array for a bytes payload.
 */
export type Payload = JSONValue | Uint8Array;

/** A payload to send: a value JSON.stringify turns into JSON, or bytes. */
export type PayloadInput = BytesInput | JSONValue | unknown;

/** The protocol's encodings: 'json' (text messages) or 'binary' (compact binary messages, bytes payloads raw). */
export type Encoding = 'json' | 'binary';

/**
 * Error codes a ChannelError may carry: the protocol's, the client's own
 * ('timeout' locally too, 'disconnected', 'buffer_full', 'not_joined',
 * 'left', 'error') or any code the server application chose.
 */
export type ErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'not_joined'
  | 'already_joined'
  | 'too_many_topics'
  | 'topic_full'
  | 'rate_limited'
  | 'no_handler'
  | 'timeout'
  | 'unavailable'
  | 'internal'
  | 'disconnected'
  | 'buffer_full'
  | 'left'
  | 'error'
  | (string & {});

/** How every failure reaches the application. */
export declare class ChannelError extends Error {
  constructor(code: ErrorCode, message?: string, extra?: { retryAfter?: number });
  readonly name: 'ChannelError';
  /** The protocol's error code, or a local one ('timeout', 'disconnected', 'buffer_full', 'not_joined', 'left'). */
  readonly code: ErrorCode;
  /** For 'rate_limited': the milliseconds after which a retry may succeed. */
  readonly retryAfter?: number;
}

/** Reconnect backoff: exponential with full jitter, between 0 and min(max, min·2^attempt) ms. */
export interface ReconnectOptions {
  /** The first cap, in ms (default 250). */
  min?: number;
  /** The largest cap, in ms (default 10000). */
  max?: number;
}

/** A WebSocket constructor: the browser's, or Node's `ws` package. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocket;

export interface SocketOptions {
  /**
   * The encoding to offer (default 'json'): 'binary' offers
   * wsactor.channel.v1.bin and sends every message in the compact binary
   * encoding. A server answering with no subprotocol is spoken to in JSON.
   * Either way bytes payloads work (in JSON as base64).
   */
  encoding?: Encoding;
  /** Query parameters added to the URL at each connect (e.g. a token); a function is called at each connect. */
  params?: Record<string, string | number | boolean> | (() => Record<string, string | number | boolean>);
  /** Reconnect backoff (default {min: 250, max: 10000}). */
  reconnect?: ReconnectOptions;
  /** Default timeout of joins, pushes, leaves, pings and of a connect, in ms (default 10000). */
  timeout?: number;
  /** Interval of the application-level ping, in ms (default 25000; 0 disables it). A ping unanswered within the timeout closes the connection and reconnects. */
  heartbeatInterval?: number;
  /** How many pushes wait while the channel is not joined (default 100); when full, the oldest is rejected with code 'buffer_full'. */
  bufferSize?: number;
  /** The WebSocket implementation (default globalThis.WebSocket); under Node: require('ws'). */
  WebSocket?: WebSocketConstructor | any;
  /** Called with what the client does, for debugging. */
  logger?: (kind: string, message: string, data?: unknown) => void;
}

/** What onClose callbacks get. */
export interface CloseInfo {
  /** The WebSocket close code (1006 for a connection given up by the client). */
  code: number;
  reason: string;
  /** Whether the socket will reconnect: false after disconnect(), and after 1000, 1003, 1008, 1009, 4400 and 4429. */
  reconnect: boolean;
}

/** One WebSocket connection to a channel.Hub, reconnecting by itself, carrying any number of Channels. */
export declare class Socket {
  /**
   * @param url the hub's address: ws:// or wss://, or in a browser a path
   *   or http(s) address resolved against the page (e.g. '/ws').
   */
  constructor(url: string, opts?: SocketOptions);
  readonly url: string;
  /** Opens the connection, and keeps it open (reconnecting) until disconnect(). */
  connect(): void;
  /** Closes the connection with code (default 1000) and reason; no reconnect until connect() again. */
  disconnect(code?: number, reason?: string): void;
  /** Whether the WebSocket is open. */
  isConnected(): boolean;
  /** Calls cb each time the connection opens. Returns the function that unsubscribes. */
  onOpen(cb: () => void): () => void;
  /** Calls cb each time the connection closes. Returns the function that unsubscribes. */
  onClose(cb: (info: CloseInfo) => void): () => void;
  /** Calls cb on a WebSocket error. Returns the function that unsubscribes. */
  onError(cb: (error: unknown) => void): () => void;
  /**
   * Returns the Channel of topic, made on first use (later calls return the
   * same Channel and ignore opts).
   */
  channel(topic: string, opts?: ChannelOptions): Channel;
}

export interface ChannelOptions {
  /** Sent as the join's params; a function is called at each (re)join. */
  params?: JSONValue | (() => JSONValue);
  /** Ask for this many past events on a join without a position to recover from (the first). */
  history?: number;
}

/** One event of a join's history. */
export interface HistoryEvent<T = any> {
  event: string;
  /** The payload: parsed JSON, or a Uint8Array for bytes (sent as data_b64). */
  data?: T;
  offset: number;
}

/** The data of a successful join's reply. */
export interface JoinReply {
  /** The topic's epoch: it changes when its history starts anew. */
  epoch: string;
  /** The topic's latest offset when the join took effect. */
  offset: number;
  /** True when the join recovered every event missed since the channel's position. */
  recovered: boolean;
  /** Why a recover did not recover: 'epoch', 'expired' or 'ahead'. */
  reason?: 'epoch' | 'expired' | 'ahead' | (string & {});
  /** The events the join delivered, oldest first (also delivered through on()). */
  history: HistoryEvent[];
  /** What the topic's authorization returned, if anything. */
  reply?: any;
}

/** What event callbacks get besides the data. */
export interface EventMeta {
  event: string;
  topic: string;
  /** The event's offset in the topic's stream; undefined for events not kept. */
  offset?: number;
  /** True for an event replayed from a join's history. */
  history: boolean;
}

/** A place in a topic's stream. */
export interface Position {
  /** null before the first join. */
  epoch: string | null;
  /** The highest offset applied (0 for none). */
  offset: number;
}

export type ChannelState = 'closed' | 'joining' | 'joined' | 'leaving' | 'errored';

/**
 * One topic on a Socket. After a reconnect it joins again by itself with
 * `recover`, so the events missed meanwhile arrive once each, in order;
 * events with an offset not above the last applied one are dropped.
 */
export declare class Channel {
  readonly socket: Socket;
  readonly topic: string;
  params?: JSONValue | (() => JSONValue);
  /** 'closed' (initial, or after leave()), 'joining', 'joined', 'leaving', or 'errored' (disconnected, or a join failed). */
  readonly state: ChannelState;
  /**
   * Joins the topic. Resolves with the join reply; rejects with a
   * ChannelError: the server's code ('unauthorized', 'topic_full', ...) or
   * 'timeout'. After a transient failure ('timeout', 'unavailable',
   * 'rate_limited', 'already_joined', 'internal') the channel keeps trying
   * (with backoff) until leave(). Calling it again while joining or joined
   * returns the same promise.
   */
  join(opts?: { timeout?: number }): Promise<JoinReply>;
  /** Leaves the topic (no rejoin any more); buffered pushes are rejected with 'left'. Resolves once the server answered or the timeout passed. */
  leave(opts?: { timeout?: number }): Promise<void>;
  /**
   * Pushes event with data: a JSON value, or bytes (Uint8Array, ArrayBuffer
   * or a view; copied when it waits in the offline buffer). Resolves with
   * the reply's data (a Uint8Array if the reply is bytes); rejects with a
   * ChannelError: the server's code, 'timeout' (counted from this call),
   * 'disconnected' (the connection dropped before the answer), 'buffer_full',
   * 'left', or 'not_joined' (join() was not called). A push made while the
   * channel is not joined waits in the socket's offline buffer.
   */
  push<R = any>(event: string, data?: PayloadInput, opts?: { timeout?: number }): Promise<R>;
  /**
   * Calls cb for each event named event ('*' for all), history included;
   * data is the parsed JSON or, for a bytes payload, a Uint8Array. Returns
   * the function that unsubscribes.
   */
  on<T = any>(event: string, cb: (data: T, meta: EventMeta) => void): () => void;
  /**
   * Answers server pushes named event ('*': those with no handler of their
   * own), data being parsed JSON or a Uint8Array: the value cb returns (or
   * resolves with) is the ok reply (bytes for a Uint8Array, ArrayBuffer or
   * view); an error it throws is an error reply with err.code (default
   * 'error'). Pushes with no handler get the error 'no_handler'. One handler
   * per event; returns the function that removes it.
   */
  onPush<T = any>(event: string, cb: (data: T, meta: { event: string; topic: string }) => unknown): () => void;
  /** Calls cb after each successful join, before its history is delivered: reload your state when reply.recovered is false. */
  onJoin(cb: (reply: JoinReply) => void): () => void;
  /** Calls cb when the membership ends: reason 'leave' (leave()), or the server's 'removed', 'stopped', 'shutdown'. */
  onLeft(cb: (info: { reason: string }) => void): () => void;
  /** Calls cb when a (re)join is refused for good (the channel stops trying). */
  onError(cb: (error: ChannelError) => void): () => void;
  /** The last position applied. */
  position(): Position;
}

/** One connection of a presence key. */
export interface PresenceMeta<M = any> {
  id: string;
  meta?: M;
}

/** A key's connections. */
export interface PresenceEntry<M = any> {
  metas: PresenceMeta<M>[];
}

/**
 * Who is in a channel's topic (a topic that tracks presence), by key (the
 * user), each with one meta per connection. Make it before joining.
 */
export declare class Presence<M = any> {
  constructor(channel: Channel);
  readonly channel: Channel;
  /** Who is there. */
  list(): Array<{ key: string; metas: PresenceMeta<M>[] }>;
  /** Calls cb when connections of key arrive: current is the key's entry before (undefined if the key is new). */
  onJoin(cb: (key: string, current: PresenceEntry<M> | undefined, newMetas: PresenceMeta<M>[]) => void): () => void;
  /** Calls cb when connections of key go: remaining is the key's entry after (no metas: the key left). */
  onLeave(cb: (key: string, remaining: PresenceEntry<M>, leftMetas: PresenceMeta<M>[]) => void): () => void;
  /** Calls cb after the state or a diff was applied. */
  onSync(cb: () => void): () => void;
}
