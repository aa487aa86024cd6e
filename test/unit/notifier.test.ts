/** The in-process notifier: a topic's listeners, and `kind:*` listeners hearing every topic of that kind. */
import { describe, expect, it } from 'vitest';
import { LocalNotifier, topics } from '../../src/core/notifier.js';

describe('LocalNotifier', () => {
  it('tells a topic to its listeners and every project topic to topics.anyProject, with the topic', () => {
    const n = new LocalNotifier();
    const heard: string[] = [];
    const stopAny = n.subscribe(topics.anyProject, (topic) => heard.push(`any ${topic}`));
    const stopOne = n.subscribe(topics.project('p1'), (topic) => heard.push(`one ${topic}`));
    n.publish(topics.project('p1'));
    n.publish(topics.project('p2'));
    n.publish(topics.execution('e1'));
    n.publish(topics.notifications);
    expect(heard).toEqual(['one project:p1', 'any project:p1', 'any project:p2']);
    stopAny();
    stopOne();
    n.publish(topics.project('p1'));
    expect(heard).toHaveLength(3);
  });

  it('goes on telling the others when a listener throws', () => {
    const n = new LocalNotifier();
    let heard = 0;
    n.subscribe(topics.anyProject, () => {
      throw new Error('listener failed');
    });
    n.subscribe(topics.anyProject, () => heard++);
    n.publish(topics.project('p1'));
    expect(heard).toBe(1);
  });
});
