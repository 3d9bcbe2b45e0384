export default { name: 'memory', title: 'todo', cases: () => [] };
