export * from './compaction.seal';
export * from './compaction.request';
export * from './compaction-from-chat.dialect';
