export default { name: 'stream', title: 'todo', cases: () => [] };
