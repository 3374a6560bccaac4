/**
 * `widget-live.js`: the live channel (live.ts), built apart from widget.js and loaded by it the
 * first time a person is asked for in a conversation, so the visitors who never are (most) do not
 * download it and widget.js stays in its size budget (docs/web.md).
 */
import { LiveChannel } from "./live";

(window as Window & { chatedgeLive?: typeof LiveChannel }).chatedgeLive = LiveChannel;
