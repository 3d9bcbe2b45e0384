export default { name: 'scale', title: 'todo', cases: () => [] };
